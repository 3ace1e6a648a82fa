using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// The kernels of <c>training.cu</c> against float64 CPU loops: bias addition, and LoRA-input dropout
/// whose mask must be the CPU graph's exactly (the same elements dropped, so both backends train
/// the same function).
/// </summary>
internal static class TrainingKernelChecks
{
    private const double Bf16Tolerance = 1e-2;

    public static KernelCheckResult AddBias(CudaTrainingContext ctx, int seed)
    {
        const int rows = 37, cols = 96;
        var rng = new Random(seed);
        var y = Bf16.Random(rng, rows * cols);
        var bias = Bf16.Random(rng, cols);
        using var dy = Alloc(ctx, y.Length * 2L);
        using var db = Alloc(ctx, cols * 2L);
        db.Upload<ushort>(bias);
        var (outs, det) = Twice(ctx, () => dy.Upload<ushort>(y), () => ctx.Training.AddBias(dy.Pointer, db.Pointer, rows, cols), dy);
        var reference = new double[y.Length];
        for (var i = 0; i < y.Length; i++) reference[i] = Bf16.ToSingle(y[i]) + (double)Bf16.ToSingle(bias[i % cols]);
        return new KernelCheckResult("kernel_add_bias", seed, [new("y + bias", ErrorMetrics.Relative(Bf16.ToDouble(outs[0]), reference), Bf16Tolerance)], det);
    }

    /// <summary>copy_columns_bf16: a block of columns between matrices of different row strides, exact, the destination's other columns untouched.</summary>
    public static KernelCheckResult CopyColumns(CudaTrainingContext ctx, int seed)
    {
        const int rows = 37, cols = 16, srcStride = 24, dstStride = 2080, dstOffset = 2048;
        var rng = new Random(seed);
        var src = Bf16.Random(rng, rows * srcStride);
        var dst = Bf16.Random(rng, rows * dstStride);
        using var dSrc = Alloc(ctx, src.Length * 2L);
        using var dDst = Alloc(ctx, dst.Length * 2L);
        dSrc.Upload<ushort>(src);
        var (outs, det) = Twice(ctx, () => dDst.Upload<ushort>(dst),
            () => ctx.Training.CopyColumns(dDst.Pointer + dstOffset * 2, dstStride, dSrc.Pointer, srcStride, rows, cols), dDst);
        var expected = (ushort[])dst.Clone();
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < cols; c++) expected[r * dstStride + dstOffset + c] = src[r * srcStride + c];
        var got = outs[0];
        var mismatches = 0;
        for (var i = 0; i < expected.Length; i++) if (got[i] != expected[i]) mismatches++;
        return new KernelCheckResult("kernel_copy_columns", seed, [new("mismatched values", mismatches, 0)], det);
    }

    /// <summary>dropout_apply and dropout_add against the CPU graph's mask: element i dropped when (Mix(key + i) >> 11) · 2⁻⁵³ &lt; rate.</summary>
    public static KernelCheckResult Dropout(CudaTrainingContext ctx, int seed)
    {
        const int n = 10007;
        const double rate = 0.3;
        var rng = new Random(seed);
        var x = Bf16.Random(rng, n);
        var dx = Bf16.Random(rng, n);
        var mask = DropoutMask.For((ulong)rng.NextInt64(), layer: 3, Projection.Up, rate);
        using var dX = Alloc(ctx, n * 2L);
        using var dDst = Alloc(ctx, n * 2L);
        using var dAcc = Alloc(ctx, n * 2L);
        dX.Upload<ushort>(x);
        var (outs, det) = Twice(ctx, () => dAcc.Upload<ushort>(dx), () =>
        {
            ctx.Training.Dropout(dDst.Pointer, dX.Pointer, n, mask);
            ctx.Training.DropoutAdd(dAcc.Pointer, dX.Pointer, n, mask);
        }, dDst, dAcc);
        var keep = 1 / (1 - rate);
        var applied = new double[n];
        var added = new double[n];
        var mismatches = 0;
        var gpu = Bf16.ToDouble(outs[0]);
        for (var i = 0; i < n; i++)
        {
            // The CPU graph's test, in doubles (LlamaGraph.ApplyDropout).
            var u = (DeterministicRandom.Mix(mask.Key + (ulong)i) >> 11) * (1.0 / (1UL << 53));
            var dropped = u < rate;
            applied[i] = dropped ? 0 : Bf16.ToSingle(x[i]) * keep;
            added[i] = Bf16.ToSingle(dx[i]) + applied[i];
            if (dropped != (gpu[i] == 0)) mismatches++;
        }
        return new KernelCheckResult("kernel_dropout", seed,
        [
            new("mask elements differing from the CPU graph's", mismatches, 0),
            new("dropout(x)", ErrorMetrics.Relative(gpu, applied), Bf16Tolerance),
            new("dx + dropout(t)", ErrorMetrics.Relative(Bf16.ToDouble(outs[1]), added), Bf16Tolerance),
        ], det);
    }

    private static Memory.DeviceBuffer Alloc(CudaTrainingContext ctx, long bytes) => ctx.Device.Memory.Allocate(bytes);

    private static (ushort[][] First, bool Deterministic) Twice(CudaTrainingContext ctx, Action prepare, Action launch, params Memory.DeviceBuffer[] outputs)
    {
        ushort[][] Once()
        {
            foreach (var o in outputs) o.FillBytes(0xFF);
            prepare();
            launch();
            ctx.Device.Synchronize();
            return outputs.Select(o => o.Download<ushort>()).ToArray();
        }
        var first = Once();
        var second = Once();
        return (first, first.Zip(second).All(p => p.First.AsSpan().SequenceEqual(p.Second)));
    }
}
