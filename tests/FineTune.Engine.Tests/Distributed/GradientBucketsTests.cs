using FineTune.Engine.Distributed;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests.Distributed;

/// <summary>The bucket layout of the gradient sum, and that it never changes the sum's result.</summary>
public class GradientBucketsTests
{
    /// <summary>Llama-3.2-1B's shapes (hidden 2048, 16 layers, 32/8 heads of 64, MLP 8192).</summary>
    private static readonly ModelConfig Llama1B = new()
    {
        ModelType = "llama", VocabSize = 128256, HiddenSize = 2048, IntermediateSize = 8192, NumLayers = 16,
        NumHeads = 32, NumKvHeads = 8, HeadDim = 64, RmsNormEps = 1e-5, RopeTheta = 500000,
    };

    [Fact]
    public void Llama_1b_rank_16_on_all_projections_gets_ddps_first_small_bucket_then_25_mib_ones()
    {
        var adapter = new LoraAdapter(Llama1B, new LoraSettings(16, 32, 0, false, Projections.All));
        var offsets = Offsets(adapter.Tensors.Select(t => (long)t.Value.Length).ToArray());
        var buckets = GradientBuckets.Plan(adapter.TensorLayers, offsets);
        // Per layer r·(in+out) summed over q,k,v,o,gate,up,down = 16·(4096+2560+2560+4096+3·10240) = 704,512 values = 2.69 MiB.
        // 1 MiB → the top layer alone; 25 MiB → 10 layers (9 are 24.2 MiB); the rest, 5 layers.
        Assert.Equal([(15, 15), (5, 14), (0, 4)], buckets.Select(b => (b.FirstLayer, b.LastLayer)).ToArray());
        Assert.Equal(704_512L * 10, buckets[1].Count);
    }

    [Theory]
    [InlineData(1L << 10, 1L << 12)]
    [InlineData(1L << 20, 25L << 20)]
    [InlineData(1, 1)]
    [InlineData(1L << 40, 1L << 40)]
    public void Buckets_cover_the_buffer_once_in_whole_layers_last_layer_first(long first, long size)
    {
        var c = TestModels.Config(layers: 5);
        var adapter = new LoraAdapter(c, new LoraSettings(4, 8, 0, false, [Projection.Q, Projection.V, Projection.Down]));
        var offsets = Offsets(adapter.Tensors.Select(t => (long)t.Value.Length + 3).ToArray()); // padding between tensors, as on the GPU
        var buckets = GradientBuckets.Plan(adapter.TensorLayers, offsets, 4, first, size);
        Assert.Equal(offsets[^1], buckets[0].End);
        Assert.Equal(0, buckets[^1].Start);
        for (var i = 1; i < buckets.Count; i++)
        {
            Assert.Equal(buckets[i - 1].Start, buckets[i].End);
            Assert.Equal(buckets[i - 1].FirstLayer - 1, buckets[i].LastLayer);
        }
        foreach (var b in buckets)
            Assert.Equal(offsets[b.FirstTensor], b.Start);
    }

    [Fact]
    public void The_sum_over_ranks_does_not_depend_on_the_bucket_layout_and_is_the_same_on_every_rank()
    {
        const int ranks = 3;
        var c = TestModels.Config(layers: 4);
        var grads = Enumerable.Range(0, ranks).Select(r =>
        {
            var a = new LoraAdapter(c, new LoraSettings(4, 8, 0, false, Projections.All));
            var rng = new DeterministicRandom((ulong)(r + 1));
            foreach (var t in a.Tensors)
                for (var i = 0; i < t.Grad.Length; i++) t.Grad[i] = (float)(rng.NextGaussian() * Math.Pow(10, rng.NextInt(6) - 3));
            return a;
        }).ToArray();
        float[][] Summed(long first, long size)
        {
            var adapters = grads.Select(Copy).ToArray();
            var hub = new InProcessRanks(ranks);
            hub.Run(group =>
            {
                // The CPU model buckets with DDP's sizes; here the layout is forced through the same Plan.
                var tensors = adapters[group.Rank].Tensors;
                var offsets = Offsets(tensors.Select(t => (long)t.Grad.Length).ToArray());
                foreach (var b in GradientBuckets.Plan(adapters[group.Rank].TensorLayers, offsets, 4, first, size))
                {
                    var flat = new float[b.Count];
                    for (var t = b.FirstTensor; t < b.EndTensor; t++) tensors[t].Grad.CopyTo(flat, offsets[t] - b.Start);
                    group.SumInRankOrder(flat);
                    for (var t = b.FirstTensor; t < b.EndTensor; t++) flat.AsSpan((int)(offsets[t] - b.Start), tensors[t].Grad.Length).CopyTo(tensors[t].Grad);
                }
                return 0;
            });
            for (var r = 1; r < ranks; r++)
                Assert.Equal(Flatten(adapters[0]), Flatten(adapters[r]));
            return [Flatten(adapters[0])];
        }
        var oneBucket = Summed(long.MaxValue, long.MaxValue)[0];
        var small = Summed(64, 256)[0];
        Assert.Equal(oneBucket, small);
        // And against the plain rank-order sum of each element.
        var expected = Flatten(grads[0]).Zip(Flatten(grads[1]), (a, b) => a + b).Zip(Flatten(grads[2]), (ab, x) => ab + x).ToArray();
        Assert.Equal(expected, oneBucket);
    }

    private static long[] Offsets(long[] lengths)
    {
        var o = new long[lengths.Length + 1];
        for (var i = 0; i < lengths.Length; i++) o[i + 1] = o[i] + lengths[i];
        return o;
    }

    private static float[] Flatten(LoraAdapter a) => a.Tensors.SelectMany(t => t.Grad).ToArray();

    private static LoraAdapter Copy(LoraAdapter a)
    {
        var b = new LoraAdapter(a.Config, a.Settings);
        for (var i = 0; i < a.Tensors.Count; i++) a.Tensors[i].Grad.CopyTo(b.Tensors[i].Grad, 0);
        return b;
    }
}
