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

    /// <summary>
    /// lora_grad.cu: C (fp32) += Aᵀ·B over the tokens against float64, at a dB shape (A the wide side, strided dY rows), a
    /// group's dA shape (B the wide side, strided x), a narrow side over 64 (two column tiles), a long batch over one tile
    /// (slices in several groups: both levels of the sum) and a short batch (one token slice, no tickets), all queued
    /// in one call so the three 16-column ones share a launch; byte-identical on a rerun, the tickets left zeroed.
    /// </summary>
    public static KernelCheckResult LoraGradient(CudaTrainingContext ctx, int seed)
    {
        (int M, int N, int K, int Lda, int Ldb)[] shapes = [(200, 16, 3000, 224, 48), (48, 576, 2500, 48, 592), (136, 72, 1100, 136, 72), (64, 16, 9000, 64, 16), (64, 8, 40, 64, 8)];
        var rng = new Random(seed);
        using var ws = Alloc(ctx, LoraGradientKernels.WorkspaceBytes);
        ws.FillBytes(0);
        var inputs = new List<(ushort[] A, ushort[] B, float[] C0, Memory.DeviceBuffer DA, Memory.DeviceBuffer DB, Memory.DeviceBuffer DC)>();
        try
        {
            foreach (var (m, n, k, lda, ldb) in shapes)
            {
                var a = Bf16.Random(rng, (long)k * lda);
                var b = Bf16.Random(rng, (long)k * ldb);
                var c0 = new float[m * n];
                for (var i = 0; i < c0.Length; i++) c0[i] = (float)(rng.NextDouble() * 2 - 1);
                var (dA, dB, dC) = (Alloc(ctx, a.Length * 2L), Alloc(ctx, b.Length * 2L), Alloc(ctx, c0.Length * 4L));
                dA.Upload<ushort>(a);
                dB.Upload<ushort>(b);
                inputs.Add((a, b, c0, dA, dB, dC));
            }
            // All five in one call, as a layer's gradients go: those with the same column tile share a launch.
            var products = shapes.Select((s, i) => new GradientProduct(inputs[i].DC.Pointer, inputs[i].DA.Pointer, s.Lda, inputs[i].DB.Pointer, s.Ldb, s.M, s.N, s.K)).ToList();
            float[][] Once()
            {
                foreach (var x in inputs) x.DC.Upload<float>(x.C0);
                var refused = ctx.LoraGradients.Accumulate(ws.Pointer, products);
                if (refused.Count > 0) throw new InvalidOperationException($"lora_grad refused {refused.Count} of the checked shapes.");
                ctx.Device.Synchronize();
                return inputs.Select(x => x.DC.Download<float>()).ToArray();
            }
            var first = Once();
            var deterministic = first.Zip(Once()).All(p => p.First.AsSpan().SequenceEqual(p.Second));
            var errors = new List<OutputError>();
            var sliced = 0;
            for (var s = 0; s < shapes.Length; s++)
            {
                var (m, n, k, lda, ldb) = shapes[s];
                var (a, b, c0, _, _, _) = inputs[s];
                if (k >= 1024) sliced++;
                var reference = new double[m * n];
                for (var i = 0; i < m; i++)
                    for (var j = 0; j < n; j++)
                    {
                        double sum = c0[i * n + j];
                        for (var t = 0; t < k; t++) sum += (double)Bf16.ToSingle(a[(long)t * lda + i]) * Bf16.ToSingle(b[(long)t * ldb + j]);
                        reference[i * n + j] = sum;
                    }
                errors.Add(new($"C += A^T B, {m} x {n} over {k} tokens", ErrorMetrics.Relative(first[s], reference), 1e-5));
            }
            var tickets = ws.Download<int>().AsSpan((int)(LoraGradientKernels.PartialBytes / 4));
            var left = 0;
            foreach (var t in tickets) if (t != 0) left++;
            errors.Add(new("tickets not left at zero", left, 0));
            return new KernelCheckResult("kernel_lora_gradient", seed, errors, deterministic);
        }
        finally
        {
            foreach (var x in inputs)
            {
                x.DA.Dispose();
                x.DB.Dispose();
                x.DC.Dispose();
            }
        }
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
