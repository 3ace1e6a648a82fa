using System.Text.Json.Nodes;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Core.Progress;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Model;
using FineTune.Engine.Training;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests;

public class TrainerTests
{
    /// <summary>A copy task: the reply repeats the prompt, so a model can learn it and the loss must fall.</summary>
    private static List<TokenizedExample> CopyTask(int count, int seed)
    {
        var rng = new DeterministicRandom((ulong)seed);
        var result = new List<TokenizedExample>();
        for (var e = 0; e < count; e++)
        {
            var n = 3 + rng.NextInt(4);
            var prompt = Enumerable.Range(0, n).Select(_ => rng.NextInt(8)).ToArray();
            int[] ids = [46, .. prompt, 47, .. prompt];
            var targets = ids.Select((_, i) => i > n + 1).ToArray();
            result.Add(new TokenizedExample(ids, targets));
        }
        return result;
    }

    private static TrainerOptions Options(TempDir dir, string name, TrainingConfig? config = null) => new()
    {
        BaseModelDirectory = dir["model"],
        Config = config ?? new TrainingConfig
        {
            R = 4, LoraAlpha = 8, LearningRate = 1e-2, MaxSteps = 12, WarmupSteps = 2, PerDeviceTrainBatchSize = 2,
            GradientAccumulationSteps = 2, SaveSteps = 4, EvalSteps = 6, MaxSeqLength = 64, LoraDropout = 0.1,
        },
        Train = CopyTask(24, 1),
        Validation = CopyTask(4, 2),
        OutDirectory = dir[name],
        CheckpointDirectory = dir[name + "-ck"],
        Backend = new CpuBackend(2),
    };

    private static TempDir WithModel()
    {
        var dir = new TempDir();
        TestModels.WriteModel(dir["model"], TestModels.Config(), std: 0.1);
        return dir;
    }

    [Fact]
    public void Loss_goes_down_and_outputs_follow_the_peft_layout()
    {
        using var dir = WithModel();
        var options = Options(dir, "out") with { Config = Options(dir, "x").Config with { MaxSteps = 30, LoraDropout = 0 } };
        var reports = new List<TrainingProgress>();
        var result = new Trainer(options).Run(new SyncProgress(reports.Add), CancellationToken.None);
        var losses = reports.Where(r => r.EvalLoss is null).Select(r => r.Loss).ToList();
        Assert.Equal(30, losses.Count);
        // ln(48) ≈ 3.87 is chance level; learning the copy task takes the loss well below it.
        Assert.True(losses.Skip(25).Average() < losses.Take(5).Average() - 0.3, $"loss {losses[0]} -> {losses[^1]}");
        Assert.NotNull(result.FinalEvalLoss);

        var config = JsonNode.Parse(File.ReadAllText(dir["out/adapter_config.json"]))!;
        Assert.Equal("LORA", (string?)config["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)config["task_type"]);
        Assert.Equal(4, (int)config["r"]!);
        using var adapter = SafetensorsFile.Open(dir["out/adapter_model.safetensors"]);
        var a = adapter.Info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
        Assert.Equal(new long[] { 4, 24 }, a.Shape);
        Assert.Equal(new long[] { 16, 4 }, adapter.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").Shape);
        var metrics = File.ReadAllLines(dir["out/metrics.jsonl"]).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(30, metrics.Count(m => m["loss"] is not null));
        Assert.Equal(5, metrics.Count(m => m["eval_loss"] is not null));
        var summary = JsonNode.Parse(File.ReadAllText(dir["out/train-summary.json"]))!;
        Assert.Equal(30, (int)summary["steps"]!);
        Assert.False(Directory.Exists(dir["out-ck/checkpoint"]), "a finished run leaves no checkpoint behind");
    }

    [Fact]
    public void Two_runs_give_byte_identical_adapters_and_a_resumed_run_matches_too()
    {
        using var dir = WithModel();
        new Trainer(Options(dir, "a")).Run(null, CancellationToken.None);
        new Trainer(Options(dir, "b")).Run(null, CancellationToken.None);
        var expected = File.ReadAllBytes(dir["a/adapter_model.safetensors"]);
        Assert.Equal(expected, File.ReadAllBytes(dir["b/adapter_model.safetensors"]));

        // Cancel after step 6 (a checkpoint is written at cancellation), then resume in a new trainer.
        using var cts = new CancellationTokenSource();
        var interrupted = Options(dir, "c");
        Assert.ThrowsAny<OperationCanceledException>(() => new Trainer(interrupted).Run(
            new SyncProgress(p => { if (p.Step == 6) cts.Cancel(); }), cts.Token));
        Assert.False(File.Exists(dir["c/adapter_model.safetensors"]));
        Assert.True(File.Exists(dir["c-ck/checkpoint/state.json"]));
        var steps = new List<int>();
        new Trainer(interrupted).Run(new SyncProgress(p => steps.Add(p.Step)), CancellationToken.None);
        Assert.Equal(7, steps.Min());
        Assert.Equal(expected, File.ReadAllBytes(dir["c/adapter_model.safetensors"]));
        Assert.Equal(12, File.ReadAllLines(dir["c/metrics.jsonl"]).Count(l => l.Contains("\"loss\"")));
    }

    /// <summary>
    /// A damaged checkpoint (bit rot, a full disk, a copy cut short) is discarded and training starts
    /// from step 0: it never fails every later build, and never resumes into different bytes.
    /// </summary>
    [Theory]
    [InlineData("state.safetensors", "flip")]
    [InlineData("state.safetensors", "truncate")]
    [InlineData("state.safetensors", "delete")]
    [InlineData("metrics.jsonl", "flip")]
    [InlineData("state.json", "truncate")]
    public void A_damaged_checkpoint_is_discarded_and_training_restarts_to_the_same_adapter(string file, string damage)
    {
        using var dir = WithModel();
        new Trainer(Options(dir, "a")).Run(null, CancellationToken.None);
        var expected = File.ReadAllBytes(dir["a/adapter_model.safetensors"]);

        using var cts = new CancellationTokenSource();
        var log = new List<string>();
        var options = Options(dir, "b") with { Log = log.Add };
        Assert.ThrowsAny<OperationCanceledException>(() => new Trainer(options).Run(
            new SyncProgress(p => { if (p.Step == 6) cts.Cancel(); }), cts.Token));
        var path = dir["b-ck/checkpoint/" + file];
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "flip":
                // Past the safetensors header: values change, the file still parses.
                bytes[bytes.Length - 9] ^= 0x5A;
                File.WriteAllBytes(path, bytes);
                break;
            case "truncate":
                File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                break;
            default:
                File.Delete(path);
                break;
        }

        log.Clear();
        var steps = new List<int>();
        new Trainer(options).Run(new SyncProgress(p => steps.Add(p.Step)), CancellationToken.None);
        Assert.DoesNotContain(log, l => l.StartsWith("Resuming", StringComparison.Ordinal));
        Assert.Equal(1, steps.Min());
        Assert.Equal(expected, File.ReadAllBytes(dir["b/adapter_model.safetensors"]));
        Assert.Equal(12, File.ReadAllLines(dir["b/metrics.jsonl"]).Count(l => l.Contains("\"loss\"")));
    }

    [Fact]
    public void Cancelling_right_after_a_periodic_checkpoint_keeps_it_and_the_log_says_where_to_resume()
    {
        using var dir = WithModel();
        var log = new List<string>();
        var options = Options(dir, "a") with { Log = log.Add };
        // save_steps is 4: the checkpoint of step 4 is on disk when the cancellation is seen.
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => new Trainer(options).Run(
            new SyncProgress(p => { if (p.Step == 4 && p.EvalLoss is null) cts.Cancel(); }), cts.Token));
        var checkpoint = Path.Combine(dir["a-ck"], "checkpoint");
        Assert.Equal(
            [$"Checkpoint saved at step 4/12 in {checkpoint}.", $"Stopped at step 4/12; the checkpoint in {checkpoint} holds it and the next run resumes from there."],
            log);
        Assert.Equal(4, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "state.json")))!["step"]!);

        log.Clear();
        new Trainer(options).Run(null, CancellationToken.None);
        Assert.Equal($"Resuming from the checkpoint at step 4/12 in {checkpoint}.", log[0]);
        Assert.Equal($"Checkpoint saved at step 8/12 in {checkpoint}.", Assert.Single(log.Skip(1)));
    }

    [Fact]
    public void Divergence_is_an_error_naming_the_step()
    {
        using var dir = WithModel();
        var options = Options(dir, "out");
        options = options with { Config = options.Config with { LearningRate = 1e30, MaxGradNorm = 0, WarmupSteps = 0, SaveSteps = 0 } };
        var e = Assert.Throws<FineTuneException>(() => new Trainer(options).Run(null, CancellationToken.None));
        Assert.Equal("FT3024", e.Code);
        Assert.Matches("step [0-9]+", e.Message);
    }

    [Fact]
    public void Gradient_checkpointing_does_not_change_the_result()
    {
        using var dir = WithModel();
        var on = Options(dir, "on");
        on = on with { Config = on.Config with { MaxSteps = 3, GradientCheckpointing = true } };
        var off = Options(dir, "off");
        off = off with { Config = off.Config with { MaxSteps = 3, GradientCheckpointing = false } };
        new Trainer(on).Run(null, CancellationToken.None);
        new Trainer(off).Run(null, CancellationToken.None);
        Assert.Equal(File.ReadAllBytes(dir["on/adapter_model.safetensors"]), File.ReadAllBytes(dir["off/adapter_model.safetensors"]));
    }

    /// <summary>
    /// A device that reads the weights from the files itself (as the GPU streams them) trains without
    /// the trainer ever building the float32 copy, and ends with the CPU device's adapter byte for byte.
    /// </summary>
    [Fact]
    public void A_device_that_reads_the_files_itself_gets_no_float32_copy()
    {
        using var dir = WithModel();
        new Trainer(Options(dir, "cpu")).Run(null, CancellationToken.None);
        var device = new FilesOnlyDevice(new CpuBackend(2));
        new Trainer(Options(dir, "files") with { Device = device }).Run(null, CancellationToken.None);
        Assert.Equal([false, false], device.Float32Loaded);
        Assert.Equal(File.ReadAllBytes(dir["cpu/adapter_model.safetensors"]), File.ReadAllBytes(dir["files/adapter_model.safetensors"]));
    }

    /// <summary>Builds its own float32 weights from <see cref="BaseModel.Files"/>; records whether the trainer built the shared copy (at creation, at the end).</summary>
    private sealed class FilesOnlyDevice(CpuBackend backend) : ITrainingDevice
    {
        public List<bool> Float32Loaded { get; } = [];

        public string Name => "files-only";

        public ITrainingModel CreateModel(BaseModel baseModel, Lora.LoraAdapter adapter, TrainingConfig config, int longestSequence, Action<string>? log)
        {
            Float32Loaded.Add(baseModel.Float32Loaded);
            var own = LlamaWeights.Load(baseModel.Config, baseModel.Files);
            var inner = new CpuTrainingModel(new LlamaGraph(own, adapter, backend, config.GradientCheckpointing), adapter,
                new AdamW(config.AdamBeta1, config.AdamBeta2, config.AdamEpsilon, config.WeightDecay));
            return new Observed(inner, () => Float32Loaded.Add(baseModel.Float32Loaded));
        }
    }

    private sealed class Observed(ITrainingModel inner, Action disposed) : ITrainingModel
    {
        public ulong? DropoutKey { get => inner.DropoutKey; set => inner.DropoutKey = value; }
        public void ZeroGradients() => inner.ZeroGradients();
        public double ForwardBackward(PackedBatch batch, float lossScale) => inner.ForwardBackward(batch, lossScale);
        public (double[] RowLoss, double[] RowLogitMeans) ForwardBackwardRows(PackedBatch batch, Func<double[], float[]?> rowScales, bool adapterEnabled = true) =>
            inner.ForwardBackwardRows(batch, rowScales, adapterEnabled);
        public double GradNorm() => inner.GradNorm();
        public void ClipAndStep(double gradNorm, double maxGradNorm, int step, double learningRate) => inner.ClipAndStep(gradNorm, maxGradNorm, step, learningRate);
        public void CopyAdapterTo(Lora.LoraAdapter adapter) => inner.CopyAdapterTo(adapter);
        public void LoadAdapter(Lora.LoraAdapter adapter) => inner.LoadAdapter(adapter);
        public long PeakMemoryBytes => inner.PeakMemoryBytes;

        public void Dispose()
        {
            disposed();
            inner.Dispose();
        }
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
