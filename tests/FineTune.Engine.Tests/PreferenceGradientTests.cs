using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Training;
using FineTune.Engine.Training.Preference;

namespace FineTune.Engine.Tests;

/// <summary>
/// The gradients of every preference loss (each DPO loss_type, label smoothing, ORPO with its NLL
/// term) against central finite differences of the same loss, through the packed chosen/rejected
/// batch and two micro-batches; and the reference model with the adapter switched off equals a model
/// that never had one.
/// </summary>
public sealed class PreferenceGradientTests
{
    private static List<TokenizedPair> Pairs(int vocab)
    {
        var rng = new DeterministicRandom(11);
        TokenizedExample Example(int prompt, int completion) =>
            new([.. Enumerable.Range(0, prompt + completion).Select(_ => rng.NextInt(vocab))],
                [.. Enumerable.Repeat(false, prompt), .. Enumerable.Repeat(true, completion)]);
        return [.. Enumerable.Range(0, 3).Select(i => new TokenizedPair(Example(3, 3 + i), Example(3, 4 - i)))];
    }

    public static TheoryData<string, string, double> Losses => new()
    {
        { "dpo", "sigmoid", 0.0 },
        { "dpo", "sigmoid", 0.2 },
        { "dpo", "ipo", 0.0 },
        { "dpo", "hinge", 0.0 },
        { "orpo", "sigmoid", 0.0 },
    };

    [Theory]
    [MemberData(nameof(Losses))]
    public void Adapter_gradients_match_finite_differences(string trainer, string lossType, double labelSmoothing)
    {
        using var dir = new TempDir();
        var c = TestModels.Config();
        TestModels.WriteModel(dir["m"], c);
        var adapter = new LoraAdapter(c, new LoraSettings(2, 3, 0, false, Projections.All));
        var rng = new DeterministicRandom(5);
        foreach (var t in adapter.Tensors)
            for (var i = 0; i < t.Value.Length; i++) t.Value[i] = (float)(rng.NextGaussian() * 0.3);
        var config = new TrainingConfig { Trainer = trainer, LossType = lossType, LabelSmoothing = labelSmoothing, Beta = 0.5 };
        var model = new CpuTrainingModel(new LlamaGraph(LlamaWeights.Load(dir["m"]), adapter, new CpuBackend(2)), adapter, new AdamW(0.9, 0.999, 1e-8, 0));
        var pairs = Pairs(c.VocabSize);
        var objective = new PreferenceObjective(config, pairs, "training");
        // The reference: the base model (adapter off), offset so DPO's margin is away from the hinge's kink.
        var references = PreferenceObjective.References(model, pairs, 2, adapterEnabled: false).Select(r => new ReferenceLogps(r.Chosen - 0.3, r.Rejected)).ToArray();
        IReadOnlyList<IReadOnlyList<int>> micro = [[0, 1], [2]];

        model.ZeroGradients();
        objective.Run(model, micro, pairs, references, train: true);
        var (relative, norm2) = FiniteDifferences.Compare(adapter.Tensors, () => objective.Run(model, micro, pairs, references, train: false).Loss);
        Assert.True(norm2 > 1e-8, "the gradient should not vanish");
        Assert.True(relative < 5e-3, $"relative error {relative:E3}");
    }

    [Fact]
    public void Two_dpo_runs_write_byte_identical_adapters_and_metrics_except_timings()
    {
        using var dir = new TempDir();
        var c = TestModels.Config();
        TestModels.WriteModel(dir["m"], c);
        var pairs = Pairs(c.VocabSize);
        byte[] Run(string name)
        {
            new Trainer(new TrainerOptions
            {
                BaseModelDirectory = dir["m"],
                Config = new TrainingConfig { Trainer = "dpo", R = 2, LoraAlpha = 4, MaxSteps = 3, PerDeviceTrainBatchSize = 2, GradientAccumulationSteps = 1, WarmupSteps = 0, LearningRate = 0.01 },
                Train = [],
                PreferenceTrain = pairs,
                OutDirectory = dir[name],
                CheckpointDirectory = dir[name + "-ck"],
                Backend = new CpuBackend(2),
            }).Run(null, CancellationToken.None);
            Assert.Contains("\"rewards/accuracies\"", File.ReadAllText(dir[name + "/metrics.jsonl"]));
            return File.ReadAllBytes(dir[name + "/adapter_model.safetensors"]);
        }
        Assert.Equal(Run("a"), Run("b"));
        Assert.Equal(File.ReadAllText(dir["a/reference-logps.json"]), File.ReadAllText(dir["b/reference-logps.json"]));
    }

    [Fact]
    public void The_reference_with_the_adapter_switched_off_is_the_base_model()
    {
        using var dir = new TempDir();
        var c = TestModels.Config();
        TestModels.WriteModel(dir["m"], c);
        var adapter = new LoraAdapter(c, new LoraSettings(2, 3, 0, false, Projections.All));
        foreach (var t in adapter.Tensors) Array.Fill(t.Value, 0.2f);
        var weights = LlamaWeights.Load(dir["m"]);
        var withAdapter = new CpuTrainingModel(new LlamaGraph(weights, adapter, new CpuBackend(2)), adapter, new AdamW(0.9, 0.999, 1e-8, 0));
        var plain = new CpuTrainingModel(new LlamaGraph(weights, null, new CpuBackend(2)), adapter, new AdamW(0.9, 0.999, 1e-8, 0));
        var pairs = Pairs(c.VocabSize);
        var off = PreferenceObjective.References(withAdapter, pairs, 2, adapterEnabled: false);
        var on = PreferenceObjective.References(withAdapter, pairs, 2, adapterEnabled: true);
        Assert.Equal(PreferenceObjective.References(plain, pairs, 2, adapterEnabled: true), off);
        Assert.NotEqual(off, on);
    }
}
