// bench/train-cuda: on a GPU machine, (1) the end-to-end training checks (GPU vs CPU losses,
// determinism, resume) that the [CudaFact] tests run, then (2) LoRA SFT speed at the peer's
// shapes: tokens/s, peak GPU memory, MFU. JSON lines on stdout.
//   train-cuda [--checks-only | --bench-only] [--warm N] [--steps N] [--shapes name:batch:seq:ckpt[:rank],...]
//   train-cuda --write-model <shape> <dir>          a BF16 safetensors model of a shape, random values
//   train-cuda --load-memory <dir> float32|stream    host peak memory of putting it on the GPU (one loader per process)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Backends.Cuda.Verification;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var argList = args.ToList();
string? Arg(string name) => argList.IndexOf(name) is var i and >= 0 && i + 1 < argList.Count ? argList[i + 1] : null;
var steps = int.Parse(Arg("--steps") ?? "8");
var warm = int.Parse(Arg("--warm") ?? "3");
var shapes = (Arg("--shapes") ?? "smollm2-135m:8:2048:0,llama3.2-1b:4:2048:0,llama3.2-1b:4:2048:1,llama3.1-8b:2:2048:1").Split(',');
var failed = 0;

void Emit(JsonObject o) => Console.WriteLine(o.ToJsonString());

if (argList.IndexOf("--write-model") is var w and >= 0)
{
    LoadMemory.WriteModel(argList[w + 2], Shapes.Get(argList[w + 1]), seed: 5);
    return 0;
}
if (argList.IndexOf("--load-memory") is var lm and >= 0)
{
    Emit(WeightLoadMemory.Measure(argList[lm + 1], argList[lm + 2]));
    return 0;
}

if (!argList.Contains("--bench-only"))
{
    using var checks = TrainingChecks.Open();
    foreach (var name in checks.All.Keys)
    {
        var watch = Stopwatch.StartNew();
        var r = checks.Run(name);
        if (!r.Passed) failed++;
        Emit(new JsonObject
        {
            ["kind"] = "check", ["name"] = name, ["passed"] = r.Passed, ["deterministic"] = r.Deterministic,
            ["max_rel_error"] = double.IsFinite(r.MaxRelativeError) ? r.MaxRelativeError : null, ["seconds"] = Math.Round(watch.Elapsed.TotalSeconds, 2),
            ["detail"] = r.ToString(),
        });
    }
}

if (!argList.Contains("--checks-only"))
{
    using var gpu = CudaTrainingDevice.Open();
    foreach (var spec in shapes)
    {
        var parts = spec.Split(':');
        var (shape, batch, seq, ckpt) = (parts[0], int.Parse(parts[1]), int.Parse(parts[2]), parts[3] == "1");
        var rank = parts.Length > 4 ? int.Parse(parts[4]) : 16;
        try
        {
            Emit(Bench(gpu, shape, batch, seq, ckpt, warm, steps, rank));
        }
        catch (Exception e)
        {
            failed++;
            Emit(new JsonObject { ["impl"] = "finetune", ["shape"] = shape, ["batch"] = batch, ["seq"] = seq, ["grad_ckpt"] = ckpt, ["error"] = e.GetType().Name + ": " + e.Message });
        }
        gpu.Context.Device.Memory.ReleaseCached();
    }
}
return failed == 0 ? 0 : 1;

// rank 0 runs the same steps without LoRA (base forward/backward only), to measure what the adapters cost.
static JsonObject Bench(CudaTrainingDevice gpu, string shape, int batch, int seq, bool ckpt, int warm, int steps, int rank)
{
    var model = Shapes.Get(shape);
    var config = new TrainingConfig { R = Math.Max(1, rank), TargetModules = rank == 0 ? [] : TrainingConfig.AllProjections, LoraAlpha = 16, LoraDropout = 0, LearningRate = 2e-4, PerDeviceTrainBatchSize = batch, GradientCheckpointing = ckpt, MaxGradNorm = 1.0 };
    var adapter = new LoraAdapter(model, LoraSettings.From(config));
    adapter.Initialize(0);
    var memory = gpu.Context.Device.Memory;
    memory.ResetPeak();
    string? planLine = null;
    using var m = gpu.CreateRandomModel(model, adapter, config, seq, seed: 1, log: line => planLine = line);
    // Random tokens, every position a target (the peer's labels = input_ids): T-1 loss rows per sequence.
    var rng = new FineTune.Engine.DeterministicRandom(3);
    var examples = Enumerable.Range(0, batch)
        .Select(_ => new TokenizedExample(Enumerable.Range(0, seq).Select(_ => rng.NextInt(model.VocabSize)).ToArray(), Enumerable.Repeat(true, seq).ToArray()))
        .ToList();
    var packed = PackedBatch.FromExamples(examples);
    var scale = 1f / packed.LossRows.Length;
    double loss = 0;
    var watch = new Stopwatch();
    for (var i = 0; i < warm + steps; i++)
    {
        if (i == warm) watch.Start();
        m.ZeroGradients();
        loss = m.ForwardBackward(packed, scale) * scale;
        var norm = m.GradNorm();
        m.ClipAndStep(norm, 1.0, i + 1, 2e-4);
    }
    gpu.Context.Device.Synchronize();
    watch.Stop();
    var seconds = watch.Elapsed.TotalSeconds;
    var tokensPerSecond = (double)batch * seq * steps / seconds;
    var flops = Flops.PerStep(model, rank, batch, seq);
    var achieved = flops * steps / seconds;
    return new JsonObject
    {
        ["impl"] = "finetune", ["shape"] = shape, ["batch"] = batch, ["seq"] = seq, ["grad_ckpt"] = ckpt, ["rank"] = rank,
        ["tokens_per_s"] = Math.Round(tokensPerSecond), ["step_ms"] = Math.Round(seconds * 1000 / steps, 2),
        ["peak_gib"] = Math.Round(memory.PeakBytesInUse / (double)(1L << 30), 2), ["plan_gib"] = Math.Round(m.Plan.Total / (double)(1L << 30), 2),
        ["model_tflops_per_step"] = Math.Round(flops / 1e12, 2), ["tflops"] = Math.Round(achieved / 1e12, 1), ["mfu"] = Math.Round(achieved / Flops.H100Peak, 4),
        ["loss"] = Math.Round(loss, 4), ["device"] = gpu.Context.Device.Name, ["plan"] = planLine,
    };
}
