namespace FineTune.Engine.Weights.FourBit;

/// <summary>
/// QLoRA's 4-bit quantization as bitsandbytes' reference backend (<c>backends/default/ops.py</c>)
/// defines it, operation for operation in float32: per block absmax; full blocks scaled by the
/// reciprocal of their absmax, a partial last block divided by its own; clamped to [-1, 1]; the code
/// is the bucket between the code book's midpoints (a value on a midpoint takes the lower code).
/// Double quantization subtracts the absmax mean and quantizes the rest the same way with the 8-bit
/// dynamic map in blocks of 256. SPEC.md in this folder states the format and the one deliberate
/// difference (how the mean is summed).
/// </summary>
public static class FourBitQuantizer
{
    /// <summary>Block sizes bitsandbytes accepts.</summary>
    public static readonly int[] BlockSizes = [32, 64, 128, 256, 512, 1024, 2048, 4096];

    /// <summary>Quantizes <paramref name="values"/> in blocks of <paramref name="blockSize"/>.</summary>
    public static FourBitTensor Quantize(ReadOnlySpan<float> values, FourBitType type, int blockSize = 64, bool doubleQuant = true)
    {
        if (Array.IndexOf(BlockSizes, blockSize) < 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, $"4-bit block size must be one of {string.Join(", ", BlockSizes)}.");
        var (order, bounds) = FourBitCodeBook.Buckets(type);
        var scaled = new float[values.Length + (values.Length & 1)];
        var absmax = ScaleBlocks(values, blockSize, scaled);
        var packed = new byte[scaled.Length / 2];
        for (var i = 0; i < packed.Length; i++)
        {
            var hi = order[Bucket(scaled[2 * i], bounds)];
            var lo = order[Bucket(scaled[2 * i + 1], bounds)];
            packed[i] = (byte)((hi << 4) | lo);
        }
        return doubleQuant
            ? new FourBitTensor(type, blockSize, values.Length, packed, null, QuantizeAbsmax(absmax))
            : new FourBitTensor(type, blockSize, values.Length, packed, absmax, null);
    }

    /// <summary>Writes the float32 values <paramref name="tensor"/> stands for into <paramref name="output"/>.</summary>
    public static void Dequantize(FourBitTensor tensor, Span<float> output)
    {
        if (output.Length < tensor.Count) throw new ArgumentException("The output is shorter than the tensor.", nameof(output));
        var absmax = tensor.Absmax ?? DequantizeAbsmax(tensor.Nested!);
        var code = FourBitCodeBook.Values(tensor.Type);
        for (var i = 0; i < tensor.Count; i++)
        {
            var b = tensor.Packed[i >> 1];
            var c = (i & 1) == 0 ? b >> 4 : b & 0xF;
            output[i] = code[c] * absmax[i / tensor.BlockSize];
        }
    }

    /// <summary>The absmax values a double-quantized tensor stands for: dynamic code × block absmax + offset.</summary>
    public static float[] DequantizeAbsmax(DoubleQuantized nested)
    {
        var map = DynamicMap.Signed;
        var result = new float[nested.Codes.Length];
        for (var i = 0; i < result.Length; i++)
            result[i] = map[nested.Codes[i]] * nested.Absmax[i / DoubleQuantized.BlockSize] + nested.Offset;
        return result;
    }

    /// <summary>
    /// Double quantization. The offset is the mean summed in float64 and rounded once: exact and
    /// independent of summation order (PyTorch's float32 mean sums in a layout-dependent order and can
    /// differ from it in the last bit).
    /// </summary>
    public static DoubleQuantized QuantizeAbsmax(ReadOnlySpan<float> absmax, float? offset = null)
    {
        var mean = offset ?? Mean(absmax);
        var centred = new float[absmax.Length];
        for (var i = 0; i < centred.Length; i++) centred[i] = absmax[i] - mean;
        var scaled = new float[centred.Length];
        var blockAbsmax = ScaleBlocks(centred, DoubleQuantized.BlockSize, scaled);
        var map = DynamicMap.Signed;
        var bounds = new float[map.Count - 1];
        for (var i = 0; i < bounds.Length; i++) bounds[i] = (map[i] + map[i + 1]) / 2f;
        var codes = new byte[centred.Length];
        for (var i = 0; i < codes.Length; i++) codes[i] = (byte)Bucket(scaled[i], bounds);
        return new DoubleQuantized(mean, codes, blockAbsmax);
    }

    internal static float Mean(ReadOnlySpan<float> values)
    {
        var sum = 0.0;
        foreach (var v in values) sum += v;
        return (float)(sum / values.Length);
    }

    /// <summary>Per-block absmax, and each value scaled into [-1, 1] as the reference does it.</summary>
    private static float[] ScaleBlocks(ReadOnlySpan<float> values, int blockSize, Span<float> scaled)
    {
        var blocks = (values.Length + blockSize - 1) / blockSize;
        var absmax = new float[blocks];
        for (var b = 0; b < blocks; b++)
        {
            var start = b * blockSize;
            var block = values.Slice(start, Math.Min(blockSize, values.Length - start));
            var max = 0f;
            foreach (var v in block) max = MathF.Max(max, MathF.Abs(v));
            absmax[b] = max;
            var safe = MathF.Max(max, 1e-38f);
            if (block.Length == blockSize)
            {
                var inverse = 1f / safe;
                for (var i = 0; i < block.Length; i++) scaled[start + i] = Math.Clamp(block[i] * inverse, -1f, 1f);
            }
            else
            {
                for (var i = 0; i < block.Length; i++) scaled[start + i] = Math.Clamp(block[i] / safe, -1f, 1f);
            }
        }
        return absmax;
    }

    /// <summary>torch.bucketize (right=False): how many bounds lie strictly below <paramref name="x"/>.</summary>
    private static int Bucket(float x, float[] bounds)
    {
        int lo = 0, hi = bounds.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >> 1;
            if (bounds[mid] < x) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
