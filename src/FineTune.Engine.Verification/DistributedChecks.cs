using System.Text.Json.Nodes;
using FineTune.Core.Config;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Backends.Cuda.Distributed;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Distributed;
using FineTune.Engine.Model;
using FineTune.Engine.Training;

namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// Multi-GPU training's pieces on one GPU, run by the [CudaFact] tests and bench/nccl on a GPU
/// machine: the rank-order sum kernel against <see cref="RankOrder"/> bit for bit, NCCL's
/// collectives on a one-rank communicator, and a whole training run through a real one-rank NCCL
/// group (gradient buckets gathered during the backward pass, summed by the kernel, loss gathered)
/// giving the same bytes as the single-process path. What needs two GPUs (a real sum over ranks,
/// a rank dying mid-run) cannot run here.
/// </summary>
public sealed class DistributedChecks : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "finetune-nccl-checks-" + Guid.NewGuid().ToString("N")[..8]);

    private DistributedChecks(CudaTrainingDevice gpu) => Gpu = gpu;

    /// <summary>Opens GPU 0 (FT31xx when something is missing).</summary>
    public static DistributedChecks Open() => new(CudaTrainingDevice.Open());

    /// <summary>The device the checks run on.</summary>
    public CudaTrainingDevice Gpu { get; }

    /// <summary>Every check, by name.</summary>
    public IReadOnlyDictionary<string, Func<KernelCheckResult>> All => new Dictionary<string, Func<KernelCheckResult>>
    {
        ["kernel_sum_rank_slices"] = SumKernel,
        ["nccl_collectives_one_rank"] = Collectives,
        ["nccl_one_rank_training"] = OneRankTraining,
    };

    /// <summary>Runs one check, turning an exception into a failed result.</summary>
    public KernelCheckResult Run(string name)
    {
        try
        {
            return All[name]();
        }
        catch (Exception e) when (e is not KeyNotFoundException)
        {
            return new KernelCheckResult(name, 0, [], false, e.GetType().Name + ": " + e.Message);
        }
    }

    /// <summary>The GPU's sum of 3 ranks' slices equals <see cref="RankOrder.Sum(ReadOnlySpan{float}, int, Span{float})"/> in every bit.</summary>
    private KernelCheckResult SumKernel()
    {
        const int ranks = 3, n = 100_003;
        var rng = new DeterministicRandom(21);
        // Magnitudes over 12 decades, so the order of additions shows in the low bits.
        var gathered = Enumerable.Range(0, ranks * n).Select(_ => (float)(rng.NextGaussian() * Math.Pow(10, rng.NextInt(12) - 6))).ToArray();
        var expected = new float[n];
        RankOrder.Sum(gathered, ranks, expected);
        var ctx = Gpu.Context;
        using var src = ctx.Device.Memory.Allocate(gathered.Length * 4L);
        using var dst = ctx.Device.Memory.Allocate(n * 4L);
        src.Upload<float>(gathered);
        ctx.Training.SumRankSlices(dst.Pointer, src.Pointer, n, ranks);
        var actual = dst.Download<float>();
        var differing = expected.Zip(actual).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
        return new KernelCheckResult("kernel_sum_rank_slices", 21, [new OutputError($"values not bit-equal to RankOrder.Sum, of {n}", differing / (double)n, 0)], differing == 0);
    }

    /// <summary>AllGather, the all-reduce behind Any, and the host sum on a real one-rank communicator.</summary>
    private KernelCheckResult Collectives()
    {
        using var group = NcclRankGroup.Join(Gpu.Context.Device, NcclRankGroup.CreateUniqueId(), 0, 1, TimeSpan.FromSeconds(60));
        var failures = new List<string>();
        var gathered = group.AllGather([1.5, -2.25, 1e300]);
        if (!gathered.SequenceEqual([1.5, -2.25, 1e300])) failures.Add($"AllGather gave {string.Join(",", gathered)}");
        if (!group.Any(true) || group.Any(false)) failures.Add("Any is not the flag of the one rank");
        float[] values = [1f, -0f, 3.5e-20f, float.MaxValue];
        var copy = values.ToArray();
        group.SumInRankOrder(values);
        if (!values.SequenceEqual(copy)) failures.Add("SumInRankOrder changed one rank's values");
        return new KernelCheckResult("nccl_collectives_one_rank", 0, [new OutputError(NcclRankGroup.Describe(), failures.Count, 0)], failures.Count == 0,
            failures.Count == 0 ? null : string.Join("; ", failures));
    }

    /// <summary>
    /// A 12-step run (dropout on, 2 micro-batches a step, gradient buckets of one layer each so the
    /// sum overlaps the backward pass) through a one-rank NCCL group writes the adapter the
    /// single-process run writes, byte for byte, and logs the same per-step losses.
    /// </summary>
    private KernelCheckResult OneRankTraining()
    {
        const string name = "nccl_one_rank_training";
        var dir = Path.Combine(_root, name);
        var model = TrainingChecks.TinyConfig("llama");
        var modelDir = TrainingChecks.WriteModel(Path.Combine(dir, "model"), model, seed: 31);
        var config = new TrainingConfig
        {
            R = 8, LoraAlpha = 16, LoraDropout = 0.1, LearningRate = 3e-3, MaxSteps = 12, WarmupSteps = 2, PerDeviceTrainBatchSize = 4,
            GradientAccumulationSteps = 2, MaxSeqLength = 96, Seed = 7, SaveSteps = 0, EvalSteps = 6, LoggingSteps = 1, MaxGradNorm = 1.0,
        };
        var saved = CudaTrainingModel.BucketBytes;
        CudaTrainingModel.BucketBytes = (1, 1);
        try
        {
            Train(modelDir, Path.Combine(dir, "single"), config, null);
            using (var group = NcclRankGroup.Join(Gpu.Context.Device, NcclRankGroup.CreateUniqueId(), 0, 1, TimeSpan.FromSeconds(60)))
                Train(modelDir, Path.Combine(dir, "nccl"), config, group);
        }
        finally
        {
            CudaTrainingModel.BucketBytes = saved;
        }
        var identical = File.ReadAllBytes(Path.Combine(dir, "single", "adapter_model.safetensors"))
            .AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "nccl", "adapter_model.safetensors")));
        var a = Losses(Path.Combine(dir, "single"));
        var b = Losses(Path.Combine(dir, "nccl"));
        var worst = a.Count == b.Count && a.Count > 0 ? a.Zip(b, (x, y) => Math.Abs(x - y) / Math.Abs(x)).Max() : double.NaN;
        return new KernelCheckResult(name, 31, [new OutputError($"per-step loss, NCCL rank vs single process ({a.Count} lines)", worst, 0)], identical,
            identical ? null : "the adapters differ");
    }

    private void Train(string modelDir, string outDir, TrainingConfig config, IRankGroup? ranks)
    {
        var vocab = ModelConfig.Load(modelDir).VocabSize;
        new Trainer(new TrainerOptions
        {
            BaseModelDirectory = modelDir,
            Config = config,
            Train = TrainingChecks.Data(40, vocab, 5),
            Validation = TrainingChecks.Data(6, vocab, 6),
            OutDirectory = outDir,
            CheckpointDirectory = outDir + "-ck",
            Backend = new CpuBackend(),
            Device = Gpu,
            Ranks = ranks,
        }).Run(null, CancellationToken.None);
    }

    private static List<double> Losses(string dir) =>
        File.ReadLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Select(m => (double?)m["loss"] ?? (double?)m["eval_loss"] ?? double.NaN).ToList();

    /// <inheritdoc />
    public void Dispose()
    {
        Gpu.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
