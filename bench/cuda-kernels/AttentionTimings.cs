using System.Text.Json.Nodes;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Bench.KernelBench;

/// <summary>
/// Times the fused causal GQA attention forward and backward at the training shapes of the models
/// issue 8 names, and puts them next to PyTorch SDPA (flash backend) measured in the same call by
/// eng/device/sdpa_attention.py on the same shapes.
/// </summary>
internal sealed class AttentionTimings(KernelChecks checks, JsonLines output)
{
    /// <summary>The shapes (batch x sequence as in the LoRA benchmark), the same list the SDPA script times.</summary>
    public static readonly (string Model, AttentionShape Shape)[] Shapes =
    [
        ("llama-3.2-1b", new AttentionShape(4, 2048, 32, 8, 64)),
        ("llama-3.1-8b", new AttentionShape(2, 2048, 32, 8, 128)),
        ("smollm2-135m", new AttentionShape(8, 2048, 9, 3, 64)),
    ];

    /// <summary>Causal attention FLOPs: 4·B·H·D per (query, key) pair with key ≤ query (QKᵀ and PV).</summary>
    public static double ForwardFlops(AttentionShape s) => 4.0 * s.Batch * s.QueryHeads * s.HeadDim * (s.SeqLen * (s.SeqLen + 1) / 2.0);

    /// <summary>The flash-attention convention: the backward pass counts 2.5 forward passes.</summary>
    public static double BackwardFlops(AttentionShape s) => 2.5 * ForwardFlops(s);

    private readonly CudaDevice _device = checks.Device;
    private readonly CudaKernels _k = checks.Kernels;
    private readonly Dictionary<(string Model, string Op), double> _ours = [];
    private ulong _seed = 101;

    public void Run()
    {
        using var timer = new GpuTimer(_device);
        foreach (var (model, shape) in Shapes)
            Time(timer, model, shape);
    }

    private void Time(GpuTimer timer, string model, AttentionShape s)
    {
        long qn = (long)s.Batch * s.SeqLen * s.QueryHeads * s.HeadDim, kn = (long)s.Batch * s.SeqLen * s.KvHeads * s.HeadDim;
        var stats = (long)s.Batch * s.QueryHeads * s.SeqLen * 4;
        var buffers = new List<DeviceBuffer>();
        DeviceBuffer Alloc(long bytes)
        {
            var b = _device.Memory.Allocate(bytes);
            buffers.Add(b);
            b.FillBytes(0);
            return b;
        }
        DeviceBuffer Random(long count)
        {
            var b = Alloc(count * 2);
            _k.FillUniform(b.Pointer, count, _seed++, 1f);
            return b;
        }
        try
        {
            DeviceBuffer q = Random(qn), k = Random(kn), v = Random(kn), dout = Random(qn);
            DeviceBuffer o = Alloc(qn * 2), lse = Alloc(stats), delta = Alloc(stats), dq = Alloc(qn * 2), dk = Alloc(kn * 2), dv = Alloc(kn * 2);
            void Forward() => _k.AttentionForward(o.Pointer, lse.Pointer, q.Pointer, k.Pointer, v.Pointer, s);
            void Backward() => _k.AttentionBackward(dq.Pointer, dk.Pointer, dv.Pointer, q.Pointer, k.Pointer, v.Pointer, o.Pointer, dout.Pointer, lse.Pointer, delta.Pointer, s);

            AttentionForwardTiling[] forwardTilings = [AttentionForwardTiling.Rows64, AttentionForwardTiling.Rows128];
            if (_k.HasHopperAttention(s.HeadDim))
                forwardTilings = [.. forwardTilings, AttentionForwardTiling.Hopper];
            foreach (var tiling in forwardTilings)
            {
                _k.ForwardTiling = tiling;
                Emit(model, s, "forward", tiling.ToString().ToLowerInvariant(), timer.MedianMs(_ => Forward()), ForwardFlops(s));
            }
            if (_k.HasHopperAttention(s.HeadDim))
            {
                _k.ForwardTiling = AttentionForwardTiling.Hopper;
                _k.HopperWarpgroups = 2;
                Emit(model, s, "forward", "hopper_rows128", timer.MedianMs(_ => Forward()), ForwardFlops(s));
                _k.HopperWarpgroups = 1;
            }
            _k.ForwardTiling = AttentionForwardTiling.Auto;
            var fwd = timer.MedianMs(_ => Forward());
            Emit(model, s, "forward", "auto", fwd, ForwardFlops(s));
            _ours[(model, "forward")] = fwd;

            // Each backward kernel alone (inputs are the forward's real outputs), then the whole pass.
            Forward();
            _k.BackwardStages = AttentionBackwardStages.Delta;
            Emit(model, s, "backward_stage", "delta", timer.MedianMs(_ => Backward()), 0);
            var tilings = s.HeadDim <= 64 ? new[] { AttentionBackwardTiling.Rows64, AttentionBackwardTiling.Rows128 } : [AttentionBackwardTiling.Rows64];
            if (_k.HasHopperAttention(s.HeadDim))
                tilings = [.. tilings, AttentionBackwardTiling.Hopper];
            foreach (var tiling in tilings)
            {
                _k.BackwardTiling = tiling;
                foreach (var stage in new[] { AttentionBackwardStages.KeyValue, AttentionBackwardStages.Query })
                {
                    _k.BackwardStages = stage;
                    Emit(model, s, "backward_stage", $"{stage.ToString().ToLowerInvariant()}_{tiling.ToString().ToLowerInvariant()}", timer.MedianMs(_ => Backward()), 0);
                }
            }
            _k.BackwardTiling = AttentionBackwardTiling.Auto;
            // The same kernels in two launches (delta + dK/dV, then dQ), against the one launch below.
            Emit(model, s, "backward", "separate", timer.MedianMs(_ =>
            {
                _k.BackwardStages = AttentionBackwardStages.Delta | AttentionBackwardStages.KeyValue;
                Backward();
                _k.BackwardStages = AttentionBackwardStages.Query;
                Backward();
            }), BackwardFlops(s));
            _k.BackwardStages = AttentionBackwardStages.All;
            if (_k.HasHopperAttention(s.HeadDim))
            {
                _k.BackwardTiling = AttentionBackwardTiling.Hopper;
                _k.HopperWarpgroups = 2;
                foreach (var stage in new[] { AttentionBackwardStages.KeyValue, AttentionBackwardStages.Query })
                {
                    _k.BackwardStages = stage;
                    Emit(model, s, "backward_stage", $"{stage.ToString().ToLowerInvariant()}_hopper_rows128", timer.MedianMs(_ => Backward()), 0);
                }
                _k.BackwardStages = AttentionBackwardStages.All;
                Emit(model, s, "backward", "all_hopper_rows128", timer.MedianMs(_ => Backward()), BackwardFlops(s));
                _k.HopperWarpgroups = 1;
                // The mma.sync kernels' one launch (the previous default: 128-row tiles up to head_dim 64, 64-row above), against Auto below.
                var mma = CudaKernels.MmaSyncBackwardTiling(s.HeadDim);
                _k.BackwardTiling = mma;
                Emit(model, s, "backward", $"all_{mma.ToString().ToLowerInvariant()}", timer.MedianMs(_ => Backward()), BackwardFlops(s));
                _k.BackwardTiling = AttentionBackwardTiling.Auto;
            }
            var bwd = timer.MedianMs(_ => Backward());
            Emit(model, s, "backward", "all", bwd, BackwardFlops(s));
            _ours[(model, "backward")] = bwd;
        }
        finally
        {
            _k.ForwardTiling = AttentionForwardTiling.Auto;
            _k.BackwardTiling = AttentionBackwardTiling.Auto;
            _k.BackwardStages = AttentionBackwardStages.All;
            _k.HopperWarpgroups = 1;
            _device.Synchronize();
            foreach (var b in buffers)
                b.Dispose();
        }
    }

    private void Emit(string model, AttentionShape s, string op, string variant, double ms, double flops)
    {
        var line = new JsonObject
        {
            ["kind"] = "attention",
            ["model"] = model,
            ["shape"] = ShapeArray(s),
            ["op"] = op,
            ["variant"] = variant,
            ["ms"] = JsonLines.Round(ms, 4),
        };
        if (flops > 0)
            line["tflops"] = JsonLines.Round(flops / (ms * 1e-3) / 1e12, 1);
        output.Emit(line);
    }

    private static JsonArray ShapeArray(AttentionShape s) => [s.Batch, s.SeqLen, s.QueryHeads, s.KvHeads, s.HeadDim];

    /// <summary>Reads eng/device/sdpa_attention.py's lines and prints, per shape and pass, SDPA's time over ours (above 1: ours is faster).</summary>
    public void CompareWithSdpa(string path)
    {
        if (!File.Exists(path))
        {
            output.Emit(new JsonObject { ["kind"] = "compare", ["name"] = "sdpa", ["failure"] = $"{path} not found" });
            return;
        }
        foreach (var line in File.ReadLines(path))
        {
            if (JsonNode.Parse(line) is not JsonObject o || (string?)o["kind"] != "sdpa" || o["ms"] is null || o["shape"] is not JsonArray shapeNode)
                continue;
            var dims = shapeNode.Select(n => n!.GetValue<int>()).ToArray();
            var match = Shapes.FirstOrDefault(x => ShapeArray(x.Shape).Select(n => n!.GetValue<int>()).SequenceEqual(dims));
            var op = (string?)o["op"];
            if (match.Model is null || op is null || !_ours.TryGetValue((match.Model, op), out var ours))
                continue;
            var sdpa = o["ms"]!.GetValue<double>();
            var flops = op == "forward" ? ForwardFlops(match.Shape) : BackwardFlops(match.Shape);
            output.Emit(new JsonObject
            {
                ["kind"] = "compare",
                ["name"] = $"attention_{op}",
                ["model"] = match.Model,
                ["shape"] = ShapeArray(match.Shape),
                ["ours_ms"] = JsonLines.Round(ours, 4),
                ["sdpa_ms"] = JsonLines.Round(sdpa, 4),
                ["ours_tflops"] = JsonLines.Round(flops / (ours * 1e-3) / 1e12, 1),
                ["sdpa_tflops"] = JsonLines.Round(flops / (sdpa * 1e-3) / 1e12, 1),
                ["speedup_vs_sdpa"] = JsonLines.Round(sdpa / ours, 3),
                ["sdpa_backend"] = o["backend"]?.DeepClone(),
                ["sdpa_gqa"] = o["gqa"]?.DeepClone(),
            });
        }
    }
}
