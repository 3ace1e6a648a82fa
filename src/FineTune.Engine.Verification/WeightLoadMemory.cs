using System.Diagnostics;
using System.Text.Json.Nodes;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// Host memory of putting a model's weights on the GPU (bench/train-cuda --load-memory): the
/// process's peak resident set (VmHWM) after the GPU is opened and after the weights are on it, for
/// the float32 path (<see cref="LlamaWeights"/> on the host, converted on the device) and the streamed
/// one training uses. One loader per process, since VmHWM only grows.
/// </summary>
public static class WeightLoadMemory
{
    /// <summary>Loads <paramref name="dir"/> onto the GPU with <paramref name="loader"/> (<c>float32</c> or <c>stream</c>) and reports host memory.</summary>
    public static JsonObject Measure(string dir, string loader)
    {
        using var gpu = CudaTrainingDevice.Open();
        var opened = Status();
        var config = ModelConfig.Load(dir);
        var watch = Stopwatch.StartNew();
        using var files = ModelWeights.Open(dir);
        using var weights = loader switch
        {
            "float32" => CudaModelWeights.Upload(gpu.Context, LlamaWeights.Load(config, files)),
            "stream" => CudaModelWeights.Stream(gpu.Context, config, files),
            _ => throw new ArgumentException($"Unknown loader '{loader}'; use float32 or stream."),
        };
        var seconds = watch.Elapsed.TotalSeconds;
        var loaded = Status();
        var gib = 1024.0 * 1024 * 1024;
        return new JsonObject
        {
            ["kind"] = "load_memory", ["loader"] = loader, ["model"] = Path.GetFileName(Path.GetFullPath(dir)),
            ["safetensors_gib"] = Math.Round(new FileInfo(Path.Combine(dir, "model.safetensors")).Length / gib, 3),
            ["gpu_weights_gib"] = Math.Round(CudaModelWeights.Bytes(config) / gib, 3),
            ["host_peak_after_gpu_open_gib"] = Math.Round(opened.Hwm / gib, 3),
            ["host_peak_after_load_gib"] = Math.Round(loaded.Hwm / gib, 3),
            ["host_peak_added_by_load_gib"] = Math.Round((loaded.Hwm - opened.Hwm) / gib, 3),
            ["host_rss_after_load_gib"] = Math.Round(loaded.Rss / gib, 3),
            ["seconds"] = Math.Round(seconds, 2),
        };
    }

    private static (long Hwm, long Rss) Status()
    {
        long Kib(string key) => long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return (Kib("VmHWM"), Kib("VmRSS"));
    }
}
