namespace FineTune.Engine.Weights.FourBit;

/// <summary>
/// A tensor in bitsandbytes' 4-bit layout: two codes per byte (the first value in the high nibble),
/// one float32 absmax per block of <see cref="BlockSize"/> values, or, with double quantization,
/// those absmax values as 8-bit dynamic codes (<see cref="Nested"/>).
/// </summary>
/// <param name="Type">NF4 or FP4.</param>
/// <param name="BlockSize">Values per absmax block (bitsandbytes allows 32 to 4096; QLoRA uses 64).</param>
/// <param name="Count">Number of values.</param>
/// <param name="Packed">ceil(Count / 2) bytes of codes.</param>
/// <param name="Absmax">Per-block absmax, when not double quantized.</param>
/// <param name="Nested">Double-quantized absmax, when double quantized.</param>
public sealed record FourBitTensor(FourBitType Type, int BlockSize, int Count, byte[] Packed, float[]? Absmax, DoubleQuantized? Nested)
{
    /// <summary>Number of absmax blocks (the last may be partial).</summary>
    public int Blocks => (Count + BlockSize - 1) / BlockSize;

    /// <summary>Bytes this tensor holds (codes and statistics).</summary>
    public long ByteSize => Packed.Length + (Absmax?.Length ?? 0) * 4L + (Nested is { } n ? n.Codes.Length + n.Absmax.Length * 4L + 4 : 0);
}

/// <summary>
/// Double quantization of the absmax values: <see cref="Offset"/> (their mean) is subtracted and the
/// rest quantized blockwise (blocks of 256) with the signed 8-bit <see cref="DynamicMap"/>.
/// </summary>
/// <param name="Offset">Mean of the absmax values, added back after dequantizing.</param>
/// <param name="Codes">One 8-bit code per absmax value.</param>
/// <param name="Absmax">The float32 absmax of each block of 256 codes.</param>
public sealed record DoubleQuantized(float Offset, byte[] Codes, float[] Absmax)
{
    /// <summary>Values per block of the second quantization (bitsandbytes' fixed choice).</summary>
    public const int BlockSize = 256;
}
