using FineTune.Cli.Quality;
using FineTune.Cli.Tests.Chat;
using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Model;

namespace FineTune.Cli.Tests.Quality;

/// <summary>
/// The quality gate's memory estimate against what the engine really holds: the float32 arrays a
/// loaded model consists of, and the buffers an evaluation graph keeps after a forward pass.
/// </summary>
public class GateMemoryTests
{
    public static IEnumerable<object[]> Architectures() => TinyModelFactory.Architectures.Select(a => new object[] { a });

    private static LlamaWeights Load(TempDir dir, string architecture)
    {
        TinyModelFactory.Create(ChatFixture.TokenizerDir(), dir.File("model"), new TinyModelShape(Hidden: 64, Seed: 3, Architecture: architecture));
        return LlamaWeights.Load(dir.File("model"));
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void The_weight_estimate_is_the_bytes_of_every_float32_array_of_the_loaded_model(string architecture)
    {
        using var dir = new TempDir();
        var w = Load(dir, architecture);
        var arrays = new HashSet<float[]>(ReferenceEqualityComparer.Instance) { w.Embedding, w.LmHead, w.FinalNorm };
        foreach (var l in w.Layers)
            foreach (var a in new[] { l.InputNorm, l.PostNorm, l.AttentionOutNorm, l.MlpOutNorm, l.QNorm, l.KNorm }.Concat(l.Linear).Concat(l.Bias))
                if (a is not null) arrays.Add(a);
        Assert.Equal(arrays.Sum(a => 4L * a.Length), GateMemory.WeightBytes(w.Config));
    }

    [Fact]
    public void At_Llama_3_1_8B_the_gate_holds_its_8_030_261_248_parameters_as_float32()
    {
        // meta-llama/Llama-3.1-8B's config.json; the parameter count is Hugging Face's (model.num_parameters()).
        var config = new ModelConfig
        {
            ModelType = "llama", VocabSize = 128256, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32,
            NumHeads = 32, NumKvHeads = 8, HeadDim = 128, TieWordEmbeddings = false,
        };
        Assert.Equal(4L * 8_030_261_248, GateMemory.WeightBytes(config));
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void The_activation_estimate_covers_what_an_evaluation_graph_keeps_after_a_forward_pass(string architecture)
    {
        using var dir = new TempDir();
        var w = Load(dir, architecture);
        var lengths = new[] { 37, 90, 12 };
        var random = new Random(5);
        var batch = PackedBatch.FromExamples(lengths.Select(n => new TokenizedExample(
            Enumerable.Range(0, n).Select(_ => random.Next(w.Config.VocabSize)).ToArray(), Enumerable.Repeat(true, n).ToArray())).ToList());
        var estimate = GateMemory.ActivationBytes(w.Config, lengths.Sum(), lengths.Sum(n => (long)n * n), loraRank: 0);

        // On one thread every buffer the pass allocates is counted here (other tests run beside this one in the process).
        var before = GC.GetAllocatedBytesForCurrentThread();
        var graph = new LlamaGraph(w, adapter: null, new CpuBackend(1), gradientCheckpointing: true) { PrepareFrozenWeights = false };
        Assert.True(double.IsFinite(graph.ForwardBackward(batch, 0)));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        GC.KeepAlive(graph);
        // An upper bound, and not a loose one: the estimate is what the gate refuses on.
        Assert.InRange(allocated, estimate / 2, estimate);
    }
}
