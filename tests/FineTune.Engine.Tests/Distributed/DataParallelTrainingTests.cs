using System.Text.Json.Nodes;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Core.Progress;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Distributed;
using FineTune.Engine.Training;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests.Distributed;

/// <summary>
/// The trainer with several ranks (threads exchanging through <see cref="InProcessRanks"/>, as NCCL
/// ranks exchange between processes) against one process alone: the same losses and adapter within
/// float32 rounding, byte-identical repeats, and checkpoints that resume on another rank count.
/// </summary>
/// <remarks>
/// The tolerance: with N ranks a step's gradient is the same sum of per-token terms as on one, added
/// in another order (other micro-batch packing, then ranks in order). float32 addition reorders
/// differ by a few ulps (~1e-7 relative); AdamW divides by √v, which keeps relative differences
/// relative. Observed after 10 steps: losses within 3e-9, adapters within 6e-8. 1e-5 relative leaves
/// over 100x margin and still fails on a missing or doubled rank (a gradient off by a factor) or a wrong loss scale.
/// </remarks>
public class DataParallelTrainingTests
{
    private const double Tolerance = 1e-5;

    /// <summary>A copy task with lengths from 5 to 33 tokens, so dealing by tokens matters.</summary>
    private static List<TokenizedExample> Data(int count, int seed)
    {
        var rng = new DeterministicRandom((ulong)seed);
        var result = new List<TokenizedExample>();
        for (var e = 0; e < count; e++)
        {
            var n = 2 + rng.NextInt(15);
            var prompt = Enumerable.Range(0, n).Select(_ => rng.NextInt(8)).ToArray();
            int[] ids = [46, .. prompt, 47, .. prompt];
            result.Add(new TokenizedExample(ids, ids.Select((_, i) => i > n + 1).ToArray()));
        }
        return result;
    }

    private static TrainerOptions Options(TempDir dir, string name, IRankGroup? ranks = null) => new()
    {
        BaseModelDirectory = dir["model"],
        Config = new TrainingConfig
        {
            R = 4, LoraAlpha = 8, LearningRate = 1e-2, MaxSteps = 10, WarmupSteps = 2, PerDeviceTrainBatchSize = 2,
            GradientAccumulationSteps = 3, SaveSteps = 4, EvalSteps = 5, MaxSeqLength = 64, LoraDropout = 0,
        },
        Train = Data(31, 1),
        Validation = Data(5, 2),
        OutDirectory = dir[name],
        CheckpointDirectory = dir[name + "-ck"],
        Backend = new CpuBackend(1),
        Ranks = ranks,
    };

    private static TempDir WithModel()
    {
        var dir = new TempDir();
        TestModels.WriteModel(dir["model"], TestModels.Config(), std: 0.1);
        return dir;
    }

    private static void TrainOnRanks(int ranks, Func<IRankGroup, TrainerOptions> options, Func<IRankGroup, IProgress<TrainingProgress>?>? progress = null,
        Func<IRankGroup, CancellationToken>? token = null) =>
        new InProcessRanks(ranks).Run(g => new Trainer(options(g)).Run(progress?.Invoke(g), token?.Invoke(g) ?? CancellationToken.None));

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)] // more ranks than the step's 6 examples: one rank has none and still takes part in the sum
    public void Several_ranks_train_the_adapter_one_process_trains_within_float32_rounding(int ranks)
    {
        using var dir = WithModel();
        new Trainer(Options(dir, "one")).Run(null, CancellationToken.None);
        TrainOnRanks(ranks, g => Options(dir, "many", g));

        var one = Metrics(dir["one"]);
        var many = Metrics(dir["many"]);
        Assert.Equal(one.Select(m => (int)m["step"]!), many.Select(m => (int)m["step"]!));
        Assert.Equal(one.Select(m => (long)m["tokens"]!), many.Select(m => (long)m["tokens"]!));
        foreach (var key in new[] { "loss", "eval_loss", "grad_norm" })
            foreach (var (a, b) in Pairs(one, many, key))
                Assert.True(Math.Abs(a - b) <= Tolerance * Math.Abs(a), $"{key}: one process {a}, {ranks} ranks {b}");
        Assert.True(AdapterDifference(dir["one"], dir["many"]) <= Tolerance, $"adapter differs by {AdapterDifference(dir["one"], dir["many"])}");
        var summary = JsonNode.Parse(File.ReadAllText(dir["many/train-summary.json"]))!;
        Assert.EndsWith($"x{ranks} ranks", (string)summary["device"]!);
    }

    [Fact]
    public void Two_runs_on_two_ranks_write_byte_identical_adapters_and_only_rank_0_writes()
    {
        using var dir = WithModel();
        // Rank 1 is given folders of its own: it must write nothing there (no adapter, no checkpoint at save_steps).
        TrainOnRanks(2, g => Options(dir, g.Rank == 0 ? "a" : "rank1", g));
        TrainOnRanks(2, g => Options(dir, "b", g));
        Assert.False(Directory.Exists(dir["rank1"]));
        Assert.False(Directory.Exists(dir["rank1-ck"]));
        Assert.Equal(File.ReadAllBytes(dir["a/adapter_model.safetensors"]), File.ReadAllBytes(dir["b/adapter_model.safetensors"]));
        Assert.Equal(File.ReadAllText(dir["a/metrics.jsonl"]).Split('\n').Select(StripTiming), File.ReadAllText(dir["b/metrics.jsonl"]).Split('\n').Select(StripTiming));
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 3)]
    [InlineData(1, 2)]
    public void A_checkpoint_resumes_on_another_number_of_ranks(int before, int after)
    {
        using var dir = WithModel();
        new Trainer(Options(dir, "whole")).Run(null, CancellationToken.None);

        // Only rank 0 is asked to stop (as a Ctrl+C reaching one process would): every rank stops at the same step.
        using var cts = new CancellationTokenSource();
        var stoppedAt = new int[before];
        Assert.ThrowsAny<OperationCanceledException>(() => TrainOnRanks(before, g => Options(dir, "resumed", Ranks(before, g)),
            g => new SyncProgress(p => { stoppedAt[g.Rank] = p.Step; if (p.Step == 6 && g.Rank == 0) cts.Cancel(); }),
            g => g.Rank == 0 ? cts.Token : CancellationToken.None));
        Assert.All(stoppedAt, s => Assert.Equal(6, s));
        var state = JsonNode.Parse(File.ReadAllText(dir["resumed-ck/checkpoint/state.json"]))!;
        Assert.Equal(6, (int)state["step"]!);
        Assert.Equal(before, (int)state["world_size"]!);

        var log = new List<string>();
        TrainOnRanks(after, g => Options(dir, "resumed", Ranks(after, g)) with { Log = g.Rank == 0 ? log.Add : null });
        Assert.Contains(log, l => l.StartsWith("Resuming from the checkpoint at step 6/10", StringComparison.Ordinal) &&
                                  l.Contains($"written by {before} rank{(before == 1 ? "" : "s")}, resumed on {after}", StringComparison.Ordinal));
        Assert.Equal(10, Metrics(dir["resumed"]).Count(m => m["loss"] is not null));
        Assert.True(AdapterDifference(dir["whole"], dir["resumed"]) <= Tolerance, $"adapter differs by {AdapterDifference(dir["whole"], dir["resumed"])}");
        Assert.False(Directory.Exists(dir["resumed-ck/checkpoint"]), "the finished run removes the checkpoint");
    }

    [Fact]
    public void A_rank_with_other_data_stops_every_rank_with_FT3153()
    {
        using var dir = WithModel();
        var e = Assert.Throws<FineTuneException>(() => TrainOnRanks(2, g => Options(dir, "x", g) with { Train = g.Rank == 1 ? Data(31, 7) : Data(31, 1) }));
        Assert.Equal("FT3153", e.Code);
        Assert.Contains("Rank 1 trains other inputs than rank 0", e.Message);
        Assert.False(Directory.Exists(dir["x"]));
    }

    /// <summary>One rank runs as the plain single-process trainer (no group at all), as the CLI runs one GPU.</summary>
    private static IRankGroup? Ranks(int size, IRankGroup g) => size == 1 ? null : g;

    private static List<JsonNode> Metrics(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!).ToList();

    private static IEnumerable<(double, double)> Pairs(List<JsonNode> a, List<JsonNode> b, string key) =>
        a.Zip(b).Where(p => p.First[key] is not null).Select(p => ((double)p.First[key]!, (double)p.Second[key]!));

    private static string StripTiming(string line) =>
        line.Length == 0 ? line : JsonNode.Parse(line)!.AsObject() is var o && o.Remove("tokens_per_second") && o.Remove("elapsed_seconds") ? o.ToJsonString() : line;

    /// <summary>‖a − b‖ / ‖a‖ over every adapter tensor.</summary>
    private static double AdapterDifference(string a, string b)
    {
        using var x = SafetensorsFile.Open(Path.Combine(a, "adapter_model.safetensors"));
        using var y = SafetensorsFile.Open(Path.Combine(b, "adapter_model.safetensors"));
        double diff = 0, norm = 0;
        foreach (var info in x.Tensors)
        {
            var p = x.ReadF32(info.Name);
            var q = y.ReadF32(info.Name);
            for (var i = 0; i < p.Length; i++)
            {
                diff += (double)(p[i] - q[i]) * (p[i] - q[i]);
                norm += (double)p[i] * p[i];
            }
        }
        return Math.Sqrt(diff / norm);
    }

    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
