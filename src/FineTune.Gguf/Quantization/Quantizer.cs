using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using FineTune.Gguf.Format;

namespace FineTune.Gguf.Quantization;

/// <summary>
/// Converts rows of 32-bit floats to a ggml tensor type, byte-identical to llama.cpp's
/// <c>llama_model_quantize</c> without an importance matrix. Rows are independent, so work is split
/// into row chunks over threads and the result does not depend on the thread count.
/// </summary>
public static class Quantizer
{
    /// <summary>The types this quantizer can produce.</summary>
    public static IReadOnlyList<GgmlType> SupportedTypes { get; } =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    ];

    /// <summary>
    /// Quantizes <paramref name="data"/> (rows of <paramref name="rowLength"/> floats) to <paramref name="type"/>
    /// using up to <paramref name="threads"/> threads (0 = all processors).
    /// </summary>
    public static unsafe byte[] Quantize(GgmlType type, ReadOnlySpan<float> data, long rowLength, int threads = 0)
    {
        // Not through the byte overload: a tensor of more than 2^29 floats (a 70B model's embedding)
        // has more bytes than a span can count.
        fixed (float* src = data) return Quantize(type, (byte*)src, data.Length, GgmlType.F32, rowLength, threads);
    }

    /// <summary>
    /// Quantizes rows stored as <paramref name="sourceType"/> (F32, F16 or BF16, little-endian, as in a
    /// GGUF or safetensors file) to <paramref name="type"/>. Each chunk of rows is converted to floats
    /// into a small per-chunk buffer just before it is quantized, so no float copy of the whole tensor is
    /// made: quantizing an F16 model to Q8_0 reads each weight once and writes nothing in between.
    /// The bytes are those of converting the whole tensor first, then quantizing.
    /// </summary>
    public static unsafe byte[] Quantize(GgmlType type, ReadOnlySpan<byte> source, GgmlType sourceType, long rowLength, int threads = 0)
    {
        var sourceSize = sourceType switch
        {
            GgmlType.F32 => 4,
            GgmlType.F16 or GgmlType.BF16 => 2,
            _ => throw new ArgumentException($"Quantizing from {sourceType} is not supported; the source must be F32, F16 or BF16.", nameof(sourceType)),
        };
        if (source.Length % sourceSize != 0)
            throw new ArgumentException($"{source.Length} bytes are not whole {sourceType} values.", nameof(source));
        fixed (byte* src = source) return Quantize(type, src, source.Length / sourceSize, sourceType, rowLength, threads);
    }

    private static unsafe byte[] Quantize(GgmlType type, byte* src, long values, GgmlType sourceType, long rowLength, int threads)
    {
        if (!SupportedTypes.Contains(type)) throw new ArgumentException($"Quantizing to {type} is not supported.", nameof(type));
        var sourceSize = sourceType == GgmlType.F32 ? 4 : 2;
        if (rowLength <= 0 || values % rowLength != 0)
            throw new ArgumentException($"{values} values are not whole rows of {rowLength}.", nameof(rowLength));
        var rows = values / rowLength;
        var rowBytes = GgmlTypeInfo.RowSize(type, rowLength);
        // Types whose kernels write every byte need no zeroing (hundreds of MB for a large model).
        var output = type is GgmlType.Q8_0 or GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
            ? GC.AllocateUninitializedArray<byte>(checked((int)(rows * rowBytes)))
            : new byte[checked(rows * rowBytes)];
        var kernel = Kernel(type);
        if (threads <= 0) threads = Environment.ProcessorCount;

        // Chunks of ~64K values keep threads busy on small tensors without per-row overhead, and keep
        // a converted chunk (256 KB) in cache between conversion and quantization.
        var rowsPerChunk = Math.Max(1, (int)(65536 / rowLength));
        var chunks = (int)((rows + rowsPerChunk - 1) / rowsPerChunk);
        var srcPtr = (IntPtr)src;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            var first = (long)c * rowsPerChunk;
            var count = Math.Min(rowsPerChunk, rows - first);
            var n = checked((int)(count * rowLength));
            var dst = output.AsSpan(checked((int)(first * rowBytes)), checked((int)(count * rowBytes)));
            var at = (byte*)srcPtr + first * rowLength * sourceSize;
            if (sourceType == GgmlType.F32)
            {
                kernel(new ReadOnlySpan<float>(at, n), dst);
                return;
            }
            var buffer = ArrayPool<float>.Shared.Rent(n);
            try
            {
                var halves = new ReadOnlySpan<ushort>(at, n);
                if (sourceType == GgmlType.F16) HalfBits.ToFloat(halves, buffer);
                else for (var i = 0; i < n; i++) buffer[i] = HalfBits.BFloat16ToFloat(halves[i]);
                kernel(buffer.AsSpan(0, n), dst);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
        });
        return output;
    }

    private delegate void RowKernel(ReadOnlySpan<float> x, Span<byte> y);

    private static RowKernel Kernel(GgmlType type) => type switch
    {
        GgmlType.F32 => static (x, y) => MemoryMarshal.AsBytes(x).CopyTo(y),
        GgmlType.F16 => static (x, y) =>
        {
            for (var i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(y[(2 * i)..], HalfBits.FromFloat(x[i]));
        },
        GgmlType.BF16 => static (x, y) =>
        {
            for (var i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(y[(2 * i)..], HalfBits.BFloat16FromFloat(x[i]));
        },
        GgmlType.Q8_0 => BlockQuantizers.Q8_0,
        GgmlType.Q4_0 => BlockQuantizers.Q4_0,
        GgmlType.Q5_0 => BlockQuantizers.Q5_0,
        GgmlType.Q5_1 => BlockQuantizers.Q5_1,
        GgmlType.Q4_K => KQuantizers.Q4_K,
        GgmlType.Q5_K => KQuantizers.Q5_K,
        GgmlType.Q6_K => KQuantizers.Q6_K,
        _ => throw new ArgumentException($"Quantizing to {type} is not supported.", nameof(type)),
    };
}
