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
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> data, long rowLength, int threads = 0)
    {
        if (!SupportedTypes.Contains(type)) throw new ArgumentException($"Quantizing to {type} is not supported.", nameof(type));
        if (rowLength <= 0 || data.Length % rowLength != 0) throw new ArgumentException($"{data.Length} values are not whole rows of {rowLength}.", nameof(rowLength));
        var rows = data.Length / rowLength;
        var rowBytes = GgmlTypeInfo.RowSize(type, rowLength);
        var output = new byte[checked(rows * rowBytes)];
        var kernel = Kernel(type);
        if (threads <= 0) threads = Environment.ProcessorCount;

        // Chunks of ~64K values keep threads busy on small tensors without per-row overhead.
        var rowsPerChunk = Math.Max(1, (int)(65536 / rowLength));
        var chunks = (int)((rows + rowsPerChunk - 1) / rowsPerChunk);
        unsafe
        {
            fixed (float* src = data)
            {
                var srcPtr = (IntPtr)src;
                var length = data.Length;
                Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
                {
                    var first = (long)c * rowsPerChunk;
                    var count = Math.Min(rowsPerChunk, rows - first);
                    var input = new ReadOnlySpan<float>((float*)srcPtr + first * rowLength, checked((int)(count * rowLength)));
                    var dst = output.AsSpan(checked((int)(first * rowBytes)), checked((int)(count * rowBytes)));
                    kernel(input, dst);
                });
                GC.KeepAlive(length);
            }
        }
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
