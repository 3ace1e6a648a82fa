namespace FineTune.Gguf.Format;

/// <summary>
/// A tensor's entry in a GGUF file. <see cref="Shape"/> is in ggml order: <c>Shape[0]</c> is the
/// row length (the innermost, contiguous dimension), so a PyTorch <c>[out, in]</c> weight has
/// shape <c>[in, out]</c>.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Shape, GgmlType Type, ulong Offset)
{
    /// <summary>Total number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of data the tensor occupies (without alignment padding).</summary>
    public long ByteSize => GgmlTypeInfo.RowSize(Type, Shape[0]) * (ElementCount / Math.Max(1, Shape[0]));
}
