using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests;

/// <summary>
/// The hand-written backward pass against central finite differences of the loss, for every
/// adapter entry, over each architecture variant (so every layer type's backward is exercised).
/// </summary>
public class GradientTests
{
    private static PackedBatch Batch(int vocab, int seed, params int[] lengths)
    {
        var rng = new DeterministicRandom((ulong)seed);
        var examples = new List<TokenizedExample>();
        foreach (var len in lengths.Length > 0 ? lengths : [7, 5])
        {
            var ids = Enumerable.Range(0, len).Select(_ => rng.NextInt(vocab)).ToArray();
            var targets = Enumerable.Range(0, len).Select(t => t >= 2 && rng.NextDouble() < 0.8).ToArray();
            examples.Add(new TokenizedExample(ids, targets));
        }
        return PackedBatch.FromExamples(examples);
    }

    private static (LlamaGraph Graph, LoraAdapter Adapter) Build(TempDir dir, ModelConfig c, IReadOnlyList<Projection> targets, double dropout, bool checkpointing, bool rslora = false)
    {
        TestModels.WriteModel(dir["m"], c);
        var weights = LlamaWeights.Load(dir["m"]);
        var adapter = new LoraAdapter(c, new LoraSettings(2, 3, dropout, rslora, targets));
        // Non-zero B as well as A, so both factors' gradients are non-trivial.
        var rng = new DeterministicRandom(5);
        foreach (var t in adapter.Tensors)
            for (var i = 0; i < t.Value.Length; i++) t.Value[i] = (float)(rng.NextGaussian() * 0.3);
        return (new LlamaGraph(weights, adapter, new CpuBackend(2), checkpointing), adapter);
    }

    public static TheoryData<string, bool, bool, double, bool> Variants => new()
    {
        { "llama", false, false, 0.0, false },
        { "llama", true, true, 0.0, true },   // o_proj bias, tied embeddings, checkpointing
        { "mistral", false, false, 0.3, false }, // LoRA dropout with a fixed mask
        { "qwen2", false, false, 0.0, true },
        { "qwen3", false, true, 0.0, false },
        { "gemma3_text", false, true, 0.0, false }, // sliding window, sandwich norms, GeGLU, scaled embeddings
        { "gemma3_text", true, true, 0.3, true },   // with biases, dropout and checkpointing
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Adapter_gradients_match_finite_differences(string type, bool bias, bool tie, double dropout, bool checkpointing)
    {
        using var dir = new TempDir();
        var c = TestModels.Config(type, bias, tie);
        var (graph, adapter) = Build(dir, c, Projections.All, dropout, checkpointing, rslora: type == "qwen3");
        var batch = Batch(c.VocabSize, 3);
        var scale = 1f / batch.LossRows.Length;
        graph.DropoutKey = dropout > 0 ? 1234UL : null;
        foreach (var t in adapter.Tensors) Array.Clear(t.Grad);
        graph.ForwardBackward(batch, scale);

        var (relative, norm2) = FiniteDifferences.Compare(adapter.Tensors, () => graph.ForwardBackward(batch, 0) * scale);
        Assert.True(norm2 > 1e-6, "the gradient should not vanish");
        Assert.True(relative < 5e-3, $"relative error {relative:E3}");
    }

    [Fact]
    public void Each_projection_alone_gets_correct_gradients()
    {
        foreach (var p in Projections.All)
        {
            using var dir = new TempDir();
            var c = TestModels.Config(layers: 1);
            var (graph, adapter) = Build(dir, c, [p], 0, false);
            var batch = Batch(c.VocabSize, 9);
            var scale = 1f / batch.LossRows.Length;
            graph.ForwardBackward(batch, scale);
            var (relative, _) = FiniteDifferences.Compare([adapter.A(0, p)!], () => graph.ForwardBackward(batch, 0) * scale);
            Assert.True(relative < 5e-3, $"{p}: relative error {relative:E3}");
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gemma3_text")] // sliding window across block edges
    public void Sequences_longer_than_an_attention_block_get_correct_gradients(string type)
    {
        // 70 and 45 tokens span several 32-row blocks of the attention's query and key passes.
        using var dir = new TempDir();
        var c = TestModels.Config(type, layers: 1);
        var (graph, adapter) = Build(dir, c, [Projection.Q, Projection.K, Projection.V], 0, false);
        var batch = Batch(c.VocabSize, 11, 70, 45);
        var scale = 1f / batch.LossRows.Length;
        graph.ForwardBackward(batch, scale);
        foreach (var p in new[] { Projection.Q, Projection.K, Projection.V })
        {
            var (relative, norm2) = FiniteDifferences.Compare([adapter.A(0, p)!], () => graph.ForwardBackward(batch, 0) * scale);
            Assert.True(norm2 > 1e-8, $"{p}: the gradient should not vanish");
            Assert.True(relative < 5e-3, $"{p}: relative error {relative:E3}");
        }
    }

    [Fact]
    public void Packed_sequences_equal_separate_runs_and_attention_is_causal()
    {
        using var dir = new TempDir();
        var c = TestModels.Config("qwen3");
        TestModels.WriteModel(dir["m"], c);
        var model = LlamaModel.Load(dir["m"]);
        int[] a = [1, 5, 9, 2], b = [7, 3, 3];
        var la = model.Logits(a);
        var lb = model.Logits(b);
        var graph = new LlamaGraph(model.Weights, null, new CpuBackend(2));
        var packed = PackedBatch.FromExamples([new(a, new bool[4]), new(b, new bool[3])]);
        var both = graph.Logits(packed);
        for (var i = 0; i < la.Length; i++) Assert.Equal(la[i], both[i], 5);
        for (var i = 0; i < lb.Length; i++) Assert.Equal(lb[i], both[la.Length + i], 5);
        // Changing a later token leaves earlier positions' logits unchanged.
        var changed = model.Logits([1, 5, 9, 40]);
        for (var i = 0; i < 3 * c.VocabSize; i++) Assert.Equal(la[i], changed[i]);
        Assert.NotEqual(la[3 * c.VocabSize], changed[3 * c.VocabSize]);
    }

    [Fact]
    public void Merged_adapter_gives_the_same_logits_as_the_unmerged_one()
    {
        using var dir = new TempDir();
        var c = TestModels.Config();
        var (graph, adapter) = Build(dir, c, Projections.All, 0, false);
        adapter.Save(dir["adapter"], "m");
        var batch = PackedBatch.ForInference([3, 1, 4, 1, 5]);
        var unmerged = graph.Logits(batch);
        var merged = LlamaModel.Load(dir["m"], dir["adapter"]).Logits([3, 1, 4, 1, 5]);
        for (var i = 0; i < merged.Length; i++) Assert.Equal(unmerged[i], merged[i], 3);
    }
}
