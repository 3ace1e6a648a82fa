// bench/cuda-kernels: on a GPU machine, (1) compiles every kernel file (all compile errors at
// once), (2) runs every kernel check of KernelChecks (the same ones the GPU tests run), (3) times
// each kernel at Llama-3.2-1B training shapes against the measured ceilings (a large
// device-to-device copy, a large cuBLASLt bf16 GEMM), and (4) compares attention with PyTorch's
// SDPA when its JSON lines (eng/device/sdpa_attention.py) are given. Prints JSON lines, then a table.
//
// Attention is timed at the 1B, 8B and 135M shapes next to SDPA (AttentionTimings).
//
//   cuda-kernels [--sdpa sdpa.jsonl] [--only attention] [--skip-checks] [--skip-timings] [--probe (environment line only)]
using System.Text.Json.Nodes;
using FineTune.Bench.KernelBench;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Verification;

var sdpaPath = ArgValue("--sdpa");
// --only attention: the attention checks and timings alone (the kernel this call is about).
var attentionOnly = ArgValue("--only") == "attention";
var output = new JsonLines();

KernelChecks checks;
try
{
    checks = KernelChecks.Open();
}
catch (FineTuneException e)
{
    Console.Error.WriteLine(e.ToCanonicalString());
    return 2;
}

using (checks)
{
    var device = checks.Device;
    output.Emit(new JsonObject
    {
        ["kind"] = "environment",
        ["device"] = device.Name,
        ["compute_capability"] = $"{device.ComputeMajor}.{device.ComputeMinor}",
        ["multiprocessors"] = device.MultiprocessorCount,
        ["memory_gib"] = JsonLines.Round(device.TotalMemory / (double)(1L << 30), 1),
        ["driver_cuda_version"] = device.DriverVersion,
        ["libcuda"] = device.DriverLibrary,
        ["nvrtc"] = checks.Compiler.NvrtcLibrary,
        ["nvrtc_version"] = checks.Compiler.NvrtcVersion,
        ["cublaslt"] = checks.Blas.Library,
        ["cublaslt_version"] = (long)checks.Blas.Version,
        ["kernel_cache"] = checks.Compiler.CacheDirectory,
    });

    if (HasFlag("--probe"))
        return 0;

    // 1. Compile smoke: every file, both head dimensions, before anything else.
    // (Skipped with --only attention: its checks compile attention.cu and report its log.)
    var compileFailures = 0;
    foreach (var headDim in attentionOnly ? [] : new[] { 64, 128 })
    {
        foreach (var (file, ok, log) in checks.Compiler.CompileAll($"HEAD_DIM={headDim}"))
        {
            if (!ok)
                compileFailures++;
            output.Emit(new JsonObject { ["kind"] = "compile", ["file"] = file, ["head_dim"] = headDim, ["ok"] = ok, ["log"] = ok ? null : log });
        }
    }

    // 2. Correctness and determinism.
    if (!HasFlag("--skip-checks"))
    {
        foreach (var name in checks.All.Keys.Where(n => !attentionOnly || n.StartsWith("attention", StringComparison.Ordinal)))
        {
            if (!checks.Applies(name))
            {
                output.Emit(new JsonObject { ["kind"] = "check", ["name"] = name, ["skipped"] = $"no such kernel on {device.Architecture}" });
                continue;
            }
            var result = checks.Run(name);
            var errors = new JsonObject();
            foreach (var e in result.Errors)
                errors[e.Output] = new JsonObject { ["rel_err"] = JsonLines.Round(e.RelativeError, 8), ["tol"] = e.Tolerance };
            output.Emit(new JsonObject
            {
                ["kind"] = "check",
                ["name"] = name,
                ["passed"] = result.Passed,
                ["deterministic"] = result.Deterministic,
                ["max_rel_err"] = JsonLines.Round(result.MaxRelativeError, 8),
                ["seed"] = result.Seed,
                ["outputs"] = errors,
                ["failure"] = result.Failure,
            });
        }
    }

    // 3. Speed at Llama-3.2-1B shapes.
    if (!HasFlag("--skip-timings"))
    {
        device.SynchronizeAfterLaunch = false;
        if (!attentionOnly)
            new KernelTimings(checks, output).Run();
        var attention = new AttentionTimings(checks, output);
        attention.Run();
        if (sdpaPath is not null)
            attention.CompareWithSdpa(sdpaPath);
    }

    Table.Print(output.Lines);
    var failed = output.Lines.Count(l => (string?)l["kind"] == "check" && l["passed"]?.GetValue<bool>() == false);
    return compileFailures > 0 || failed > 0 ? 1 : 0;
}

string? ArgValue(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

bool HasFlag(string name) => args.Contains(name);
