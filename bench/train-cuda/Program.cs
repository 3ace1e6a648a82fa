// bench/train-cuda: on a GPU machine, (1) the end-to-end training checks (GPU vs CPU losses,
// determinism, resume) that the [CudaFact] tests run, then (2) LoRA SFT speed at the peer's
// shapes: tokens/s, peak GPU memory, MFU. JSON lines on stdout.
//   train-cuda [--checks-only | --bench-only] [--checks name,...] [--warm N] [--steps N] [--shapes name:batch:seq:ckpt[:rank][:nf4|fp4],...]
//              a shape ending in :nf4 or :fp4 trains over 4-bit projections (load_in_4bit, double quantization)
//              a checkpointed shape ending in :full recomputes attention too (selective checkpointing off, the A/B)
//              a shape with :unfused runs each projection's LoRA products on its own (the A/B of the fused LoRA products)
//              a shape with :unpadded runs the spare-column products (LoRA up-projection along K) only up to the member's own B,
//              K not a multiple of 64 (the A/B of the padding); with :twoproducts gate and up run one product each (the A/B of their fusion)
//              ckpt 1 is gradient_checkpointing: true, offload is gradient_checkpointing: offload (checkpoints and an
//              untied input embedding in pinned host memory)
//              a shape sft:name:ckpt:LENGTHS.json is the realistic-length SFT workload (sft-lengths.json); ending in
//              :runs it launches attention once per run of equal-length examples instead of once per batch (the A/B)
//              any shape ending in :nograph queues every launch eagerly (no CUDA-graph replay of repeated step shapes: the A/B)
//              any shape with :exactplan runs cuBLASLt's heuristic for every exact product shape instead of once per bucket
//              of token rows (CudaBlas.BucketedPlans, the A/B); every run starts from no cuBLASLt plans either way
//              any shape with :keepglu has each layer keep its own SwiGLU output instead of one shared h (GpuMemoryPlan.SharesGluOutput, the A/B)
//              any shape with :mmaattn runs the mma.sync attention kernels (128-row tiles) where the Hopper (wgmma) ones are the
//              default (compute capability 9.0, head_dim 64 and 128: the A/B)
//   train-cuda --write-model <shape> <dir>          a BF16 safetensors model of a shape, random values
//   train-cuda --load-memory <dir> float32|stream    host peak memory of putting it on the GPU (one loader per process)
//   train-cuda --fourbit-gemm <shape> <rows,...>     a 4-bit projection's product: fused kernel vs dequantize + cuBLASLt
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
if (argList.IndexOf("--fourbit-gemm") is var fg and >= 0)
{
    // --fourbit-gemm <shape> rows,rows,...: the fused 4-bit product against dequantize + cuBLASLt.
    foreach (var line in FourBitGemm.Run(Shapes.Get(argList[fg + 1]), argList[fg + 1], argList[fg + 2].Split(',').Select(int.Parse).ToArray())) Emit(line);
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
    var only = Arg("--checks")?.Split(',');
    foreach (var name in checks.All.Keys.Where(k => only is null || only.Contains(k)))
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
        var sft = parts[0] == "sft";
        var ckptValue = sft ? parts[2] : parts[3];
        var (shape, ckpt, offload) = (sft ? parts[1] : parts[0], ckptValue is "1" or "offload", ckptValue == "offload");
        try
        {
            if (parts.Contains("mmaattn"))
            {
                gpu.Context.Kernels.ForwardTiling = FineTune.Engine.Backends.Cuda.Kernels.AttentionForwardTiling.Rows128;
                gpu.Context.Kernels.BackwardTiling = FineTune.Engine.Backends.Cuda.Kernels.CudaKernels.MmaSyncBackwardTiling(Shapes.Get(shape).HeadDim);
            }
            if (sft)
            {
                gpu.Context.Blas.BucketedPlans = !parts.Contains("exactplan");
                Emit(BenchSft(gpu, shape, ckpt, SftLengths.Load(parts[3]), offload, perRun: parts.Contains("runs"), graphs: !parts.Contains("nograph"), shareGlu: parts.Contains("keepglu") ? false : null));
            }
            else
            {
                var (batch, seq) = (int.Parse(parts[1]), int.Parse(parts[2]));
                var fourBit = parts[^1] is "nf4" or "fp4" ? new FineTune.Engine.Weights.FourBit.FourBitSettings(parts[^1] == "nf4" ? FineTune.Engine.Weights.FourBit.FourBitType.Nf4 : FineTune.Engine.Weights.FourBit.FourBitType.Fp4, true) : null;
                var numeric = parts.Skip(4).Where(x => x is not ("nf4" or "fp4" or "full" or "unfused" or "nograph" or "unpadded" or "twoproducts" or "exactplan" or "keepglu" or "mmaattn" or "attnonly" or "glufwd" or "nohiddens" or "threeqkv" or "qkvga") && !x.StartsWith("limit", StringComparison.Ordinal)).ToArray();
                var rank = numeric.Length > 0 ? int.Parse(numeric[0]) : 16;
                gpu.Context.Blas.BucketedPlans = !parts.Contains("exactplan");
                Emit(Bench(gpu, shape, batch, seq, ckpt, warm, steps, rank, fourBit, keepAttention: parts.Contains("full") ? false : null, groupLora: !parts.Contains("unfused"), offload: offload, graphs: !parts.Contains("nograph"), padK: !parts.Contains("unpadded"), gateUpAsOne: !parts.Contains("twoproducts"), shareGlu: parts.Contains("keepglu") ? false : null, keepQkv: parts.Contains("attnonly") ? false : null, skipGlu: !parts.Contains("glufwd"), keepHiddens: parts.Contains("nohiddens") ? false : null, packQkv: !parts.Contains("threeqkv"), stackQkvA: !parts.Contains("qkvga"),
                    // limitG: gpu_memory_limit: G (GiB), checkpointing's layers kept whole within it.
                    memoryLimit: parts.FirstOrDefault(x => x.StartsWith("limit", StringComparison.Ordinal)) is { } limit ? (long)(double.Parse(limit[5..], System.Globalization.CultureInfo.InvariantCulture) * (1L << 30)) : null));
            }
        }
        catch (Exception e)
        {
            failed++;
            Emit(new JsonObject { ["impl"] = "finetune", ["shape"] = shape, ["spec"] = spec, ["grad_ckpt"] = ckpt, ["error"] = e.GetType().Name + ": " + e.Message });
        }
        gpu.Context.Device.Memory.ReleaseCached();
        gpu.Context.Blas.BucketedPlans = true;
        gpu.Context.Kernels.ForwardTiling = FineTune.Engine.Backends.Cuda.Kernels.AttentionForwardTiling.Auto;
        gpu.Context.Kernels.BackwardTiling = FineTune.Engine.Backends.Cuda.Kernels.AttentionBackwardTiling.Auto;
    }
}
return failed == 0 ? 0 : 1;

// rank 0 runs the same steps without LoRA (base forward/backward only), to measure what the adapters cost.
static JsonObject Bench(CudaTrainingDevice gpu, string shape, int batch, int seq, bool ckpt, int warm, int steps, int rank, FineTune.Engine.Weights.FourBit.FourBitSettings? fourBit = null, bool? keepAttention = null, bool groupLora = true, bool offload = false, bool graphs = true, bool padK = true, bool gateUpAsOne = true, bool? shareGlu = null, bool? keepQkv = null, bool skipGlu = true, bool? keepHiddens = null, bool packQkv = true, bool stackQkvA = true, long? memoryLimit = null)
{
    var model = Shapes.Get(shape);
    // Random tokens, every position a target (the peer's labels = input_ids): T-1 loss rows per sequence.
    var rng = new FineTune.Engine.DeterministicRandom(3);
    var examples = Enumerable.Range(0, batch)
        .Select(_ => new TokenizedExample(Enumerable.Range(0, seq).Select(_ => rng.NextInt(model.VocabSize)).ToArray(), Enumerable.Repeat(true, seq).ToArray()))
        .ToList();
    var packed = PackedBatch.FromExamples(examples);
    var result = Run(gpu, model, batch, seq, ckpt, rank, Enumerable.Repeat(packed, warm + steps).ToList(), warm, fourBit, keepAttention, groupLora, offload, graphs: graphs, padK: padK, gateUpAsOne: gateUpAsOne, shareGlu: shareGlu, keepQkv: keepQkv, skipGlu: skipGlu, keepHiddens: keepHiddens, packQkv: packQkv, stackQkvA: stackQkvA, memoryLimit: memoryLimit);
    result["seq"] = seq;
    return result;
}

// The realistic-length workload: batches of variable-length examples (random tokens), loss on the
// reply tokens only, planned like the trainer plans a run (batch size x the longest example).
static JsonObject BenchSft(CudaTrainingDevice gpu, string shape, bool ckpt, SftLengths lengths, bool offload = false, bool perRun = false, bool graphs = true, bool? shareGlu = null)
{
    var model = Shapes.Get(shape);
    var rng = new FineTune.Engine.DeterministicRandom(3);
    var batches = lengths.Batches.Select(b => PackedBatch.FromExamples(b.Select(e =>
        new TokenizedExample(Enumerable.Range(0, e.Length).Select(_ => rng.NextInt(model.VocabSize)).ToArray(), Enumerable.Range(0, e.Length).Select(t => t >= e.Prompt).ToArray())).ToList())).ToList();
    var longest = lengths.Batches.SelectMany(b => b).Max(e => e.Length);
    var result = Run(gpu, model, lengths.Batch, longest, ckpt, 16, batches, lengths.Warm, offload: offload, perRun: perRun, graphs: graphs, shareGlu: shareGlu);
    result["seq"] = "sft";
    result["sft_batches"] = lengths.Batches.Count;
    result["padded_rows_per_real_token"] = Math.Round(batches.Skip(lengths.Warm).Sum(b => (double)b.SeqLengths.Sum(l => (l + 15) / 16 * 16)) / batches.Skip(lengths.Warm).Sum(b => b.TokenCount), 4);
    return result;
}

static JsonObject Run(CudaTrainingDevice gpu, ModelConfig model, int batch, int planSeq, bool ckpt, int rank, List<PackedBatch> batches, int warm, FineTune.Engine.Weights.FourBit.FourBitSettings? fourBit = null, bool? keepAttention = null, bool groupLora = true, bool offload = false, bool perRun = false, bool graphs = true, bool padK = true, bool gateUpAsOne = true, bool? shareGlu = null, bool? keepQkv = null, bool skipGlu = true, bool? keepHiddens = null, bool packQkv = true, bool stackQkvA = true, long? memoryLimit = null)
{
    var config = new TrainingConfig
    {
        R = Math.Max(1, rank), TargetModules = rank == 0 ? [] : TrainingConfig.AllProjections, LoraAlpha = 16, LoraDropout = 0, LearningRate = 2e-4, PerDeviceTrainBatchSize = batch, GradientCheckpointing = ckpt, OffloadCheckpoints = offload, MaxGradNorm = 1.0,
        GpuMemoryLimit = memoryLimit, LoadIn4Bit = fourBit is not null, Bnb4BitQuantType = fourBit?.Type == FineTune.Engine.Weights.FourBit.FourBitType.Fp4 ? "fp4" : "nf4",
    };
    // Each run plans its products from scratch, as a training process does (the A/B of CudaBlas.BucketedPlans).
    var blas = gpu.Context.Blas;
    blas.ForgetPlans();
    var plansAtStart = blas.PlanStats;
    var loadWatch = Stopwatch.StartNew();
    var adapter = new LoraAdapter(model, LoraSettings.From(config));
    adapter.Initialize(0);
    var memory = gpu.Context.Device.Memory;
    memory.ResetPeak();
    string? planLine = null;
    using var m = gpu.CreateRandomModel(model, adapter, config, planSeq, seed: 1, log: line => planLine ??= line, keepAttention, shareGlu, keepQkv, keepHiddens);
    m.FuseLoraProducts = groupLora;
    m.SingleAttentionLaunch = !perRun;
    m.StepGraphs = graphs;
    m.PadSpareColumnK = padK;
    m.FuseGateUp = gateUpAsOne;
    m.SkipsRecomputedGlu = skipGlu;
    m.PacksQkvGradient = packQkv;
    m.StacksQkvA = stackQkvA;
    var loadSeconds = loadWatch.Elapsed.TotalSeconds;
    double loss = 0;
    var watch = new Stopwatch();
    for (var i = 0; i < batches.Count; i++)
    {
        if (i == warm)
        {
            watch.Start();
            plansAtStart = blas.PlanStats;
        }
        var packed = batches[i];
        var scale = 1f / packed.LossRows.Length;
        m.ZeroGradients();
        loss = m.ForwardBackward(packed, scale) * scale;
        var norm = m.GradNorm();
        m.ClipAndStep(norm, 1.0, i + 1, 2e-4);
    }
    gpu.Context.Device.Synchronize();
    watch.Stop();
    var timed = batches.Skip(warm).ToList();
    var seconds = watch.Elapsed.TotalSeconds;
    var tokens = timed.Sum(b => (double)b.TokenCount);
    var flops = timed.Sum(b => Flops.PerBatch(model, rank, b.SeqLengths));
    var achieved = flops / seconds;
    var peak = Flops.PeakBf16(gpu.Context.Device.Name);
    return new JsonObject
    {
        ["impl"] = "finetune", ["shape"] = CanonicalName(model), ["batch"] = batch, ["grad_ckpt"] = ckpt, ["offload"] = m.Plan.OffloadCheckpoints, ["rank"] = rank,
        ["tokens_per_s"] = Math.Round(tokens / seconds), ["step_ms"] = Math.Round(seconds * 1000 / timed.Count, 2), ["timed_steps"] = timed.Count,
        ["peak_gib"] = Math.Round(memory.PeakBytesInUse / (double)(1L << 30), 2), ["plan_gib"] = Math.Round(m.Plan.Total / (double)(1L << 30), 2),
        ["model_tflops_per_step"] = Math.Round(flops / timed.Count / 1e12, 2), ["tflops"] = Math.Round(achieved / 1e12, 1),
        ["mfu"] = peak is { } p ? Math.Round(achieved / p, 4) : null, ["mfu_peak_tflops"] = peak is { } q ? q / 1e12 : null,
        ["loss"] = Math.Round(loss, 4), ["device"] = gpu.Context.Device.Name, ["plan"] = planLine,
        ["base_weights"] = fourBit?.ToString() ?? "bf16", ["load_s"] = Math.Round(loadSeconds, 2), ["keeps_attention"] = m.Plan.KeepsAttention, ["keeps_qkv"] = m.Plan.KeepsQkv, ["skips_recomputed_glu"] = m.GluOutputFromBackward, ["keeps_lora_hiddens"] = m.Plan.KeepsLoraHiddens, ["gpu_memory_limit_gib"] = memoryLimit is { } ml ? Math.Round(ml / (double)(1L << 30), 2) : null, ["whole_layers"] = m.Plan.WholeLayers, ["packs_qkv_gradient"] = m.QkvGradientAsOne, ["stacks_qkv_a"] = m.QkvGradientAsOne && m.StacksQkvA, ["shares_glu_output"] = m.Plan.SharesGluOutput, ["fused_lora"] = m.FuseLoraProducts, ["padded_k"] = m.PadSpareColumnK, ["gate_up_one_product"] = m.FuseGateUp, ["attention_launches"] = perRun ? "per run of equal lengths" : "one per batch",
        // Pinned host memory the GPU reads instead of holding (load_in_4bit: an untied embedding, offloaded checkpoints); not in peak_gib.
        ["host_pinned_gib"] = Math.Round((m.Plan.HostEmbedding + m.Plan.HostCheckpoints) / (double)(1L << 30), 2),
        // CUDA-graph replay: on or off (the A/B), steps that ran as a graph (warm-up included), graphs captured, nodes in the last.
        // cuBLASLt plans: per bucket of token rows or per exact shape (the A/B); made in the timed steps by the
        // heuristic, adopted from a bucket's bound, refused by cublasLtMatmulAlgoCheck (planned fresh); all made in the run.
        ["bucketed_plans"] = blas.BucketedPlans, ["timed_plans_fresh"] = blas.PlanStats.Fresh - plansAtStart.Fresh, ["timed_plans_adopted"] = blas.PlanStats.Adopted - plansAtStart.Adopted,
        ["timed_plans_refused"] = blas.PlanStats.Refused - plansAtStart.Refused, ["plans_fresh"] = blas.PlanStats.Fresh, ["plans_adopted"] = blas.PlanStats.Adopted,
        ["graphs"] = m.StepGraphs, ["graph_steps"] = m.GraphStats.Replayed, ["graphs_captured"] = m.GraphStats.Captured, ["graph_nodes"] = m.GraphStats.Nodes, ["graph_failure"] = m.GraphFailure,
        // The attention kernels' tiling: Auto (Hopper at head_dim 64 and 128 on 9.0) or Rows128 (the :mmaattn A/B).
        ["attention_tiling"] = gpu.Context.Kernels.ForwardTiling.ToString(),
    };
}

static string CanonicalName(ModelConfig model) => Shapes.NameOf(model);
