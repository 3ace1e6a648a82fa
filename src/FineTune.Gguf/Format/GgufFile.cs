using FineTune.Gguf.Quantization;

namespace FineTune.Gguf.Format;

/// <summary>The parsed header of a GGUF file: version, metadata in file order, tensor table and data layout.</summary>
public sealed class GgufFile
{
    /// <summary>The default data alignment when <c>general.alignment</c> is absent.</summary>
    public const uint DefaultAlignment = 32;

    internal GgufFile(string path, uint version, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<GgufTensorInfo> tensors, uint alignment, long dataOffset, long fileLength)
    {
        Path = path;
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        Alignment = alignment;
        DataOffset = dataOffset;
        FileLength = fileLength;
        _byKey = metadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    private readonly Dictionary<string, GgufValue> _byKey;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

    /// <summary>The file the header was read from.</summary>
    public string Path { get; }
    /// <summary>GGUF format version (2 or 3).</summary>
    public uint Version { get; }
    /// <summary>Metadata entries in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }
    /// <summary>Tensor entries in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    /// <summary>Data alignment (from <c>general.alignment</c>, else 32).</summary>
    public uint Alignment { get; }
    /// <summary>Absolute file offset where tensor data starts.</summary>
    public long DataOffset { get; }
    /// <summary>Length of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>The metadata value of <paramref name="key"/>, or null.</summary>
    public GgufValue? Get(string key) => _byKey.GetValueOrDefault(key);

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? Tensor(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Reads the raw bytes of one tensor (bounds were checked when the header was read).</summary>
    public byte[] ReadTensorBytes(GgufTensorInfo tensor)
    {
        // Every byte is read over, so the array need not be zeroed first (hundreds of MB for a large model).
        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)tensor.ByteSize));
        using var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        fs.Position = DataOffset + (long)tensor.Offset;
        fs.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>
    /// Maps the file's tensor data read-only, for reading tensors in place (e.g. quantizing an F16 file
    /// with <see cref="Quantizer.Quantize(GgmlType, ReadOnlySpan{byte}, GgmlType, long, int)"/>).
    /// </summary>
    public GgufDataMap MapData() => new(this);

    private const int HalfChunk = 1 << 18;

    /// <summary>Reads a tensor as 32-bit floats; supports F32, F16 and BF16 data.</summary>
    public float[] ReadTensorAsFloat32(GgufTensorInfo tensor)
    {
        var bytes = ReadTensorBytes(tensor);
        var n = checked((int)tensor.ElementCount);
        var result = GC.AllocateUninitializedArray<float>(n); // every element is converted into
        switch (tensor.Type)
        {
            case GgmlType.F32:
                Buffer.BlockCopy(bytes, 0, result, 0, bytes.Length);
                break;
            case GgmlType.F16:
                // In parallel chunks: one thread converting was a third of quantizing an F16 file to Q8_0.
                Parallel.For(0, (n + HalfChunk - 1) / HalfChunk, c =>
                {
                    var start = c * HalfChunk;
                    var count = Math.Min(HalfChunk, n - start);
                    HalfBits.ToFloat(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan(2 * start, 2 * count)), result.AsSpan(start, count));
                });
                break;
            case GgmlType.BF16:
                for (var i = 0; i < n; i++) result[i] = BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(bytes, 2 * i) << 16);
                break;
            default:
                throw new NotSupportedException($"Reading {tensor.Type} tensors as floats is not supported.");
        }
        return result;
    }
}
