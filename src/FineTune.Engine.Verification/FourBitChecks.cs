using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// The 4-bit kernels (<c>fourbit.cu</c>) against the CPU reference <see cref="FourBitQuantizer"/>, which
/// bnb-goldens.json checks against bitsandbytes' own algorithm: every code byte, absmax value (or its
/// 8-bit code, second-level absmax and offset) and dequantized bf16 value must be identical, not close.
/// Then the streamed loader: a model's projections quantized on the device dequantize to exactly the
/// bf16 values the CPU trains with (<see cref="FourBitLlamaWeights"/>), so CPU and GPU 4-bit runs start
/// from the same weights.
/// </summary>
internal static class FourBitChecks
{
    /// <summary>
    /// Quantize and dequantize on the GPU vs the reference. 54,080 values: 845 blocks of 64, so the
    /// double quantization's last block of 256 is partial (77); 1,001 values: an odd count whose last
    /// 64-block is partial (quantize only; projections are multiples of 16). Each block has its own
    /// scale (1e-3..10), one block is all zeros, and one holds the code book's midpoints (rounded to bf16)
    /// beside an absmax of 1, so values fall right next to the decision boundaries.
    /// </summary>
    public static KernelCheckResult Kernels(CudaTrainingContext ctx, FourBitSettings settings, int seed)
    {
        var name = $"kernel_fourbit_{(settings.Type == FourBitType.Nf4 ? "nf4" : "fp4")}{(settings.DoubleQuant ? "_dq" : "")}";
        var rng = new Random(seed);
        var errors = new List<OutputError>();
        var deterministic = true;
        foreach (var n in new[] { 64 * (3 * 256 + 77), 1001 })
        {
            var values = Values(rng, n, settings.Type);
            var reference = FourBitQuantizer.Quantize(values, settings.Type, FourBitSettings.BlockSize, settings.DoubleQuant);
            using var source = ctx.Device.Memory.Allocate(n * 2L);
            source.Upload<ushort>(values.Select(Bf16.FromSingle).ToArray());
            using var first = ctx.FourBit.Quantize(source.Pointer, n, settings);
            using var second = ctx.FourBit.Quantize(source.Pointer, n, settings);
            var bytes = Download(ctx, first);
            deterministic &= bytes.AsSpan().SequenceEqual(Download(ctx, second)) && first.Offset.Equals(second.Offset);
            var at = (long)(first.Packed - first.Pointer);
            errors.Add(Differing($"codes, {n} values", bytes.AsSpan((int)at, reference.Packed.Length), reference.Packed));
            if (reference.Nested is { } nested)
            {
                errors.Add(Differing($"absmax codes, {n} values", bytes.AsSpan((int)(first.AbsmaxCodes - first.Pointer), nested.Codes.Length), nested.Codes));
                errors.Add(Differing($"second-level absmax, {n} values", bytes.AsSpan((int)(first.Absmax2 - first.Pointer), nested.Absmax.Length * 4), Bytes(nested.Absmax)));
                errors.Add(new OutputError($"offset, {n} values ({first.Offset:R} vs {nested.Offset:R})", first.Offset.Equals(nested.Offset) ? 0 : 1, 0));
            }
            else
            {
                errors.Add(Differing($"absmax, {n} values", bytes.AsSpan((int)(first.Absmax - first.Pointer), reference.Absmax!.Length * 4), Bytes(reference.Absmax)));
            }
            if (n % 16 != 0) continue;
            var expected = new float[n];
            FourBitQuantizer.Dequantize(reference, expected);
            using var output = ctx.Device.Memory.Allocate(n * 2L);
            output.FillBytes(0xFF); // NaN poison: an unwritten value cannot match
            ctx.FourBit.Dequantize(first, output.Pointer);
            var gpu = output.Download<ushort>();
            var mismatches = 0;
            for (var i = 0; i < n; i++) if (gpu[i] != Bf16.FromSingle(expected[i])) mismatches++;
            errors.Add(new OutputError($"dequantized bf16 values differing, {n} values", (double)mismatches / n, 0));
        }
        return new KernelCheckResult(name, seed, errors, deterministic);
    }

    /// <summary>
    /// A qwen3-style model (biases, q/k norms, untied head) stored as F32 is streamed with 4-bit
    /// projections; each projection dequantized on the GPU equals the CPU's 4-bit copy bit for bit, and
    /// every other tensor is the bf16 the plain loader gives: the untied embedding, kept in mapped host
    /// memory, as the embedding kernel reads it from there.
    /// </summary>
    public static KernelCheckResult StreamedWeights(CudaTrainingContext ctx, string dir, FourBitSettings settings)
    {
        var model = TrainingChecks.TinyConfig("qwen3") with { QkNorm = true, AttentionBias = true, OutputBias = true, TieWordEmbeddings = false };
        TrainingChecks.WriteModel(dir, model, seed: 14, TensorDType.F32);
        using var files = ModelWeights.Open(dir);
        var cpu = FourBitLlamaWeights.Dequantized(LlamaWeights.Load(model, files), settings);
        using var streamed = CudaModelWeights.Stream(ctx, model, files, fourBit: settings);
        using var plain = CudaModelWeights.Stream(ctx, model, files);
        long values = 0, differing = 0, otherBytes = 0, otherDiffering = 0;
        using var output = ctx.Device.Memory.Allocate(CudaModelWeights.LargestProjection(model) * 2);
        var pairs = new List<(Memory.DeviceBuffer, Memory.DeviceBuffer)> { (plain.FinalNorm, streamed.FinalNorm), (plain.LmHead, streamed.LmHead) };
        for (var l = 0; l < model.NumLayers; l++)
        {
            var (pl, sl) = (plain.Layers[l], streamed.Layers[l]);
            pairs.AddRange(pl.All().Where(x => !pl.Linear.Contains(x)).Zip(sl.All()));
            foreach (var p in Projections.All)
            {
                var quantized = streamed.Layers[l].FourBit[(int)p]!;
                ctx.FourBit.Dequantize(quantized, output.Pointer);
                var gpu = new ushort[quantized.Count];
                output.Download<ushort>(gpu);
                var expected = cpu.Layers[l].Linear[(int)p];
                values += gpu.Length;
                for (var i = 0; i < gpu.Length; i++) if (gpu[i] != Bf16.FromSingle(expected[i])) differing++;
            }
        }
        void Compare(byte[] x, byte[] y)
        {
            otherBytes += x.Length;
            otherDiffering += x.Length == y.Length ? x.Zip(y).Count(q => q.First != q.Second) : x.Length;
        }
        foreach (var (a, b) in pairs) Compare(a.Download<byte>(), b.Download<byte>());
        // The untied embedding stays in mapped host memory: what the embedding kernel reads there must be the bf16 table.
        if (streamed.HostEmbedding is { } host)
        {
            using var gathered = ctx.Device.Memory.Allocate(host.Bytes);
            using var ids = ctx.Device.Memory.Allocate(4L * model.VocabSize);
            ids.Upload<int>(Enumerable.Range(0, model.VocabSize).ToArray());
            ctx.Kernels.EmbeddingForward(gathered.Pointer, streamed.EmbeddingPointer, ids.Pointer, model.VocabSize, model.HiddenSize);
            Compare(plain.Embedding!.Download<byte>(), gathered.Download<byte>());
        }
        var incomplete = streamed.Layers.Any(l => l.Linear.Any(b => b is not null)) ? "a projection was also kept in bf16"
            : streamed.Embedding is not null || streamed.HostEmbedding is null ? "the untied embedding was not kept in host memory"
            : streamed.Layers.Sum(l => l.All().Count()) != plain.Layers.Sum(l => l.All().Count() - Projections.All.Length) || pairs.Count != 2 + streamed.Layers.Sum(l => l.All().Count())
                ? "the 4-bit layers hold other buffers than the bf16 layers less their projections"
                : null;
        return new KernelCheckResult("weights_stream_4bit", 14,
            [new OutputError($"projection values differing from the CPU's 4-bit copy ({values} values)", (double)differing / values, 0),
             new OutputError($"embedding, head, norm and bias bytes differing from the bf16 loader ({otherBytes} bytes)", otherBytes == 0 ? 1 : (double)otherDiffering / otherBytes, 0)],
            Deterministic: true, incomplete);
    }

    /// <summary>
    /// The fused skinny product (<see cref="Kernels.FourBitKernels.GemmSkinny"/>) against a float64 sum of the
    /// reference's dequantized bf16 weights times the bf16 inputs, and against the path it replaces (dequantize
    /// into a buffer, then cuBLASLt), with and without an addend: within 1e-2 of the largest output (bf16 output
    /// rounding is 2^-9 of a value; sums of up to 4096 fp32 products add far less). Shapes cover a single row,
    /// partial row tiles (5, 13 rows), outputs not a multiple of a warp's 4 or a block's 32, and inputs that
    /// leave lanes idle in the last step (192, 320). Two runs give the same bytes.
    /// </summary>
    public static KernelCheckResult SkinnyProduct(CudaTrainingContext ctx, FourBitSettings settings, int seed)
    {
        var rng = new Random(seed);
        var errors = new List<OutputError>();
        var deterministic = true;
        foreach (var (rows, outF, inF) in new[] { (1, 100, 192), (5, 96, 256), (16, 130, 320), (13, 66, 4096) })
        {
            var count = outF * inF;
            var weights = Values(rng, count, settings.Type);
            var reference = FourBitQuantizer.Quantize(weights, settings.Type, FourBitSettings.BlockSize, settings.DoubleQuant);
            var w = new float[count];
            FourBitQuantizer.Dequantize(reference, w);
            var x = Enumerable.Range(0, rows * inF).Select(_ => Bf16.ToSingle(Bf16.FromSingle((float)Gaussian(rng)))).ToArray();
            var add = Enumerable.Range(0, rows * outF).Select(_ => Bf16.ToSingle(Bf16.FromSingle((float)Gaussian(rng)))).ToArray();
            using var source = ctx.Device.Memory.Allocate(count * 2L);
            source.Upload<ushort>(weights.Select(Bf16.FromSingle).ToArray());
            using var quantized = ctx.FourBit.Quantize(source.Pointer, count, settings);
            using var input = ctx.Device.Memory.Allocate(rows * inF * 2L);
            input.Upload<ushort>(x.Select(Bf16.FromSingle).ToArray());
            using var addend = ctx.Device.Memory.Allocate(rows * outF * 2L);
            addend.Upload<ushort>(add.Select(Bf16.FromSingle).ToArray());
            using var output = ctx.Device.Memory.Allocate(rows * outF * 2L);
            using var dequantized = ctx.Device.Memory.Allocate(count * 2L);
            ctx.FourBit.Dequantize(quantized, dequantized.Pointer);
            foreach (var withAddend in new[] { false, true })
            {
                var expected = new double[rows * outF];
                for (var r = 0; r < rows; r++)
                    for (var o = 0; o < outF; o++)
                    {
                        var sum = withAddend ? (double)add[r * outF + o] : 0;
                        for (var k = 0; k < inF; k++) sum += (double)x[r * inF + k] * Bf16.ToSingle(Bf16.FromSingle(w[(long)o * inF + k]));
                        expected[r * outF + o] = sum;
                    }
                ushort[] Fused()
                {
                    output.FillBytes(0xFF); // NaN poison: an unwritten value cannot match
                    ctx.FourBit.GemmSkinny(input.Pointer, rows, quantized, outF, inF, output.Pointer, withAddend ? addend.Pointer : 0, withAddend ? 1f : 0f);
                    return output.Download<ushort>();
                }
                var fused = Fused();
                deterministic &= fused.AsSpan().SequenceEqual(Fused());
                ctx.Blas.Gemm(input.Pointer, false, dequantized.Pointer, true, output.Pointer, rows, outF, inF, beta: withAddend ? 1f : 0f, addend: withAddend ? addend.Pointer : 0);
                var cublas = output.Download<ushort>();
                var scale = expected.Max(Math.Abs);
                double Worst(ushort[] got) => got.Select((v, i) => Math.Abs(Bf16.ToSingle(v) - expected[i])).Max() / scale;
                var shape = $"{rows} x [{outF}, {inF}]{(withAddend ? " + addend" : "")}";
                errors.Add(new OutputError($"fused vs float64, {shape}", Worst(fused), 1e-2));
                errors.Add(new OutputError($"dequantize + cuBLASLt vs float64, {shape}", Worst(cublas), 1e-2));
            }
        }
        var name = $"kernel_fourbit_gemm_skinny_{(settings.Type == FourBitType.Nf4 ? "nf4" : "fp4")}{(settings.DoubleQuant ? "_dq" : "")}";
        return new KernelCheckResult(name, seed, errors, deterministic);
    }

    private static float[] Values(Random rng, int n, FourBitType type)
    {
        var values = new float[n];
        var (_, bounds) = FourBitCodeBook.Buckets(type);
        for (var b = 0; b * 64 < n; b++)
        {
            var scale = (float)Math.Pow(10, rng.NextDouble() * 4 - 3);
            for (var i = b * 64; i < Math.Min(n, b * 64 + 64); i++)
            {
                values[i] = b == 5 ? 0f : (float)(Gaussian(rng) * scale);
                // Absmax 1 (the first value) and the midpoints: scaled values a rounding away from the boundaries.
                if (b == 7) values[i] = i == b * 64 ? 1f : bounds[(i - b * 64) % bounds.Length];
                values[i] = Bf16.ToSingle(Bf16.FromSingle(values[i]));
            }
        }
        return values;
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static byte[] Download(CudaTrainingContext ctx, Kernels.CudaFourBitTensor t)
    {
        var bytes = new byte[t.Bytes];
        ctx.Download<byte>(bytes, t.Pointer);
        return bytes;
    }

    private static byte[] Bytes(float[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static OutputError Differing(string what, ReadOnlySpan<byte> gpu, ReadOnlySpan<byte> reference)
    {
        var differing = 0;
        for (var i = 0; i < reference.Length; i++) if (gpu[i] != reference[i]) differing++;
        return new OutputError($"{what}: bytes differing", (double)differing / Math.Max(1, reference.Length), 0);
    }
}
