// CPU LoRA training throughput of FineTune.Engine on the shapes of bench/torch_cpu_lora.py (the
// PyTorch peer): random-init tied-embedding Llama models, LoRA r=16 alpha=16 on all seven
// projections, batch 2x256, loss on every token, AdamW; 1 warm-up step then 3 timed steps.
// Usage: train-cpu-bench <tiny-llama3vocab|smollm2-135m> [threads] [--profile]. Prints one JSON line;
// with --profile it also prints where the timed steps' wall time went (a second line, "profile").
using System.Diagnostics;
using System.Text.Json;
using FineTune.Core.Datasets;
using FineTune.Engine;
using FineTune.Engine.Backends;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Training;

var shape = args.Length > 0 ? args[0] : "tiny-llama3vocab";
var threads = args.Length > 1 && !args[1].StartsWith("--") ? int.Parse(args[1]) : Environment.ProcessorCount;
var profiler = args.Contains("--profile") ? new ProfilingBackend(new CpuBackend(threads)) : null;
var (vocab, hidden, layers, heads, kv, ff, theta) = shape switch
{
    "smollm2-135m" => (49152, 576, 30, 9, 3, 1536, 100000.0),
    _ => (128256, 64, 2, 4, 2, 256, 500000.0),
};
var config = new ModelConfig
{
    ModelType = "llama", VocabSize = vocab, HiddenSize = hidden, IntermediateSize = ff, NumLayers = layers,
    NumHeads = heads, NumKvHeads = kv, HeadDim = hidden / heads, RmsNormEps = 1e-5, RopeTheta = theta, TieWordEmbeddings = true,
};
var rng = new DeterministicRandom(0);
float[] Random(long n) { var a = new float[n]; for (var i = 0; i < a.Length; i++) a[i] = (float)(rng.NextGaussian() * 0.02); return a; }
float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();
var embedding = Random((long)vocab * hidden);
var weights = new LlamaWeights
{
    Config = config,
    Embedding = embedding,
    LmHead = embedding,
    FinalNorm = Ones(hidden),
    Layers = Enumerable.Range(0, layers).Select(_ => new LayerWeights
    {
        InputNorm = Ones(hidden),
        PostNorm = Ones(hidden),
        Linear = Projections.All.Select(p => Random((long)p.OutFeatures(config) * p.InFeatures(config))).ToArray(),
        Bias = new float[]?[Projections.All.Length],
    }).ToArray(),
};
var adapter = new LoraAdapter(config, new LoraSettings(16, 16, 0, false, Projections.All));
adapter.Initialize(0);
var graph = new LlamaGraph(weights, adapter, profiler ?? (IComputeBackend)new CpuBackend(threads), gradientCheckpointing: false);
var optimizer = new AdamW(0.9, 0.999, 1e-8, 0.01);
const int batch = 2, seq = 256, steps = 3, warmup = 1;
var examples = Enumerable.Range(0, batch).Select(_ =>
    new TokenizedExample(Enumerable.Range(0, seq).Select(_ => rng.NextInt(vocab)).ToArray(), Enumerable.Repeat(true, seq).ToArray())).ToList();
var packed = PackedBatch.FromExamples(examples);
var watch = new Stopwatch();
var process = Process.GetCurrentProcess();
var cpuStart = TimeSpan.Zero;
double loss = 0;
var optimizerMs = 0.0;
for (var i = 0; i < warmup + steps; i++)
{
    if (i == warmup)
    {
        process.Refresh();
        cpuStart = process.TotalProcessorTime;
        watch.Start();
        profiler?.Reset();
    }
    foreach (var t in adapter.Tensors) Array.Clear(t.Grad);
    var scale = 1f / packed.LossRows.Length;
    loss = graph.ForwardBackward(packed, scale) * scale;
    var optimizerStart = Stopwatch.GetTimestamp();
    AdamW.Clip(adapter.Tensors, AdamW.GradNorm(adapter.Tensors), 1.0);
    optimizer.Step(adapter.Tensors, i + 1, 2e-4);
    if (i >= warmup) optimizerMs += Stopwatch.GetElapsedTime(optimizerStart).TotalMilliseconds;
}
watch.Stop();
process.Refresh();
// Which register tiles the products ran on (see GemmKernels): the JIT may turn 512-bit vectors off.
var simd = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "avx512"
    : System.Runtime.Intrinsics.X86.Fma.IsSupported && System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "avx2+fma" : "scalar";
Console.WriteLine(JsonSerializer.Serialize(new
{
    engine = "finetune-cpu",
    simd,
    shape,
    threads,
    batch,
    seq,
    tokens_per_s = Math.Round(batch * seq * steps / watch.Elapsed.TotalSeconds, 1),
    // CPU seconds per timed step: on a shared machine this is steadier than the wall clock.
    cpu_s_per_step = Math.Round((process.TotalProcessorTime - cpuStart).TotalSeconds / steps, 3),
    peak_rss_bytes = Process.GetCurrentProcess().PeakWorkingSet64,
    loss,
}));
if (profiler is not null)
{
    var sections = profiler.Report(steps).ToList();
    var stepMs = watch.Elapsed.TotalMilliseconds / steps;
    // What one parallel loop costs with nothing to do (a step runs over a thousand): 4 indices per thread.
    var backend = new CpuBackend(threads);
    for (var i = 0; i < 200; i++) backend.For(4 * threads, _ => { });
    var loopWatch = Stopwatch.StartNew();
    const int emptyLoops = 5000;
    for (var i = 0; i < emptyLoops; i++) backend.For(4 * threads, _ => { });
    var emptyLoopUs = loopWatch.Elapsed.TotalMilliseconds * 1000 / emptyLoops;
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        profile = shape,
        threads,
        step_ms = Math.Round(stepMs, 1),
        optimizer_ms = Math.Round(optimizerMs / steps, 1),
        empty_loop_us = Math.Round(emptyLoopUs, 2),
        outside_backend_ms = Math.Round(stepMs - optimizerMs / steps - sections.Sum(s => s.MsPerStep), 1),
        sections = sections.Select(s => new { name = s.Name, ms = s.MsPerStep, calls = s.CallsPerStep }),
    }));
}
