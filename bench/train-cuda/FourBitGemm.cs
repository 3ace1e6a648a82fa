using System.Text.Json.Nodes;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;
using FineTune.Engine.Weights.FourBit;

/// <summary>
/// A 4-bit projection's forward product both ways, at one model's projection shapes and several row
/// counts: dequantize into the reused bf16 buffer then cuBLASLt (what training uses), and the fused skinny
/// kernel (<see cref="FourBitKernels.GemmSkinny"/>, only up to 256 rows: beyond that it is CUDA-core
/// bound and hopeless against the tensor cores). Medians of CUDA-event timings; the weights rotate through
/// four quantized copies so no run finds them in L2, as a training step never does.
/// </summary>
internal static class FourBitGemm
{
    public static IEnumerable<JsonObject> Run(ModelConfig c, string shape, int[] rowCounts)
    {
        using var ctx = CudaTrainingContext.Open();
        var device = ctx.Device;
        device.SynchronizeAfterLaunch = false;
        var settings = new FourBitSettings(FourBitType.Nf4, DoubleQuant: true);
        var maxRows = rowCounts.Max();
        var largest = Projections.All.Max(p => (long)p.OutFeatures(c) * p.InFeatures(c));
        var widest = Projections.All.Max(p => Math.Max(p.InFeatures(c), p.OutFeatures(c)));
        using var staging = device.Memory.Allocate(largest * 2);
        using var dequantized = device.Memory.Allocate(largest * 2);
        using var x = device.Memory.Allocate((long)maxRows * widest * 2);
        using var y = device.Memory.Allocate((long)maxRows * widest * 2);
        ctx.Kernels.FillUniform(x.Pointer, (long)maxRows * widest, 7, 1f);
        using var start = new CudaEvent(device);
        using var end = new CudaEvent(device);
        double Median(Action work)
        {
            for (var i = 0; i < 3; i++) work();
            device.Synchronize();
            var times = new double[25];
            for (var i = 0; i < times.Length; i++)
            {
                start.Record(device.Stream);
                work();
                end.Record(device.Stream);
                end.Synchronize();
                times[i] = end.ElapsedSince(start);
            }
            Array.Sort(times);
            return times[times.Length / 2];
        }
        // gate and up share a shape; o shares q's.
        foreach (var p in new[] { Projection.Q, Projection.K, Projection.Gate, Projection.Down })
        {
            int outF = p.OutFeatures(c), inF = p.InFeatures(c);
            var count = (long)outF * inF;
            var copies = new List<CudaFourBitTensor>();
            for (var i = 0; i < 4; i++)
            {
                ctx.Kernels.FillUniform(staging.Pointer, count, (ulong)(100 + i), 0.02f * MathF.Sqrt(3));
                copies.Add(ctx.FourBit.Quantize(staging.Pointer, count, settings));
            }
            foreach (var rows in rowCounts)
            {
                var turn = 0;
                var buffered = Median(() =>
                {
                    ctx.FourBit.Dequantize(copies[turn++ % 4], dequantized.Pointer);
                    ctx.Blas.Gemm(x.Pointer, false, dequantized.Pointer, true, y.Pointer, rows, outF, inF);
                });
                double? fused = rows <= 256 ? Median(() => ctx.FourBit.GemmSkinny(x.Pointer, rows, copies[turn++ % 4], outF, inF, y.Pointer)) : null;
                yield return new JsonObject
                {
                    ["kind"] = "fourbit_gemm", ["shape"] = shape, ["projection"] = p.ToString(), ["rows"] = rows, ["out"] = outF, ["in"] = inF,
                    ["dequant_cublas_ms"] = Math.Round(buffered, 4), ["fused_ms"] = fused is { } f ? Math.Round(f, 4) : null,
                    ["fused_speedup"] = fused is { } g ? Math.Round(buffered / g, 2) : null,
                    ["device"] = device.Name,
                };
            }
            foreach (var t in copies) t.Dispose();
        }
    }
}
