using System.Buffers.Binary;
using System.Text;
using FineTune.Core.IO;

namespace FineTune.Gguf.Format;

/// <summary>
/// Writes a GGUF v3 file. Metadata and the tensor table are declared first; each tensor's bytes
/// come from a producer that runs when the writer reaches the tensor before it, so the next
/// tensor is read and quantized while this one is written and at most two tensors' data are in
/// memory at a time. Producers run one at a time, in order. <see cref="Write"/> goes through a
/// temporary file that is renamed into place once complete.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    /// <summary>Creates a writer whose tensor data is aligned to <paramref name="alignment"/> bytes (a power of two).</summary>
    public GgufWriter(uint alignment = GgufFile.DefaultAlignment)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw new ArgumentException("Alignment must be a power of two.", nameof(alignment));
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment) Set("general.alignment", GgufValue.Of(alignment));
    }

    /// <summary>The data alignment; written as <c>general.alignment</c> when it is not the default 32.</summary>
    public uint Alignment { get; }

    /// <summary>Metadata in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    /// <summary>Sets a metadata entry, replacing an earlier value of the same key in place.</summary>
    public void Set(string key, GgufValue value)
    {
        var i = _metadata.FindIndex(kv => kv.Key == key);
        if (i >= 0) _metadata[i] = new(key, value);
        else _metadata.Add(new(key, value));
    }

    /// <summary>
    /// Declares a tensor. <paramref name="shape"/> is in ggml order (row length first);
    /// <paramref name="produce"/> is called once, during <see cref="WriteTo"/>, and must return exactly
    /// the tensor's byte size.
    /// </summary>
    public void AddTensor(string name, long[] shape, GgmlType type, Func<ReadOnlyMemory<byte>> produce)
    {
        if (!_tensorNames.Add(name)) throw new ArgumentException($"Tensor '{name}' was already added.", nameof(name));
        if (shape.Length is 0 or > 4 || shape.Any(d => d <= 0)) throw new ArgumentException($"Tensor '{name}' has invalid shape [{string.Join(", ", shape)}].", nameof(shape));
        var size = new GgufTensorInfo(name, shape, type, 0).ByteSize;
        _tensors.Add(new PendingTensor(name, (long[])shape.Clone(), type, size, produce));
    }

    /// <summary>Writes the file atomically (temporary sibling, then rename).</summary>
    public void Write(string path) => AtomicFile.Write(path, WriteTo);

    /// <summary>Writes the whole file to <paramref name="output"/>.</summary>
    public void WriteTo(Stream output)
    {
        var header = new MemoryStream();
        var w = new BinaryWriter(header, Encoding.UTF8, leaveOpen: true);
        w.Write(0x46554747u); // "GGUF"
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        ulong offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Shape.Length);
            foreach (var d in t.Shape) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write(offset);
            offset = (ulong)GgufReader.AlignUp((long)offset + t.Size, Alignment);
        }
        w.Flush();
        Pad(header, header.Length);
        header.Position = 0;
        header.CopyTo(output);

        long written = 0;
        Task<ReadOnlyMemory<byte>>? next = _tensors.Count > 0 ? Task.Run(_tensors[0].Produce) : null;
        try
        {
            for (var i = 0; i < _tensors.Count; i++)
            {
                var t = _tensors[i];
                var data = next!.GetAwaiter().GetResult();
                next = i + 1 < _tensors.Count ? Task.Run(_tensors[i + 1].Produce) : null;
                if (data.Length != t.Size)
                    throw new InvalidOperationException($"Tensor '{t.Name}' produced {data.Length} bytes, expected {t.Size}.");
                output.Write(data.Span);
                written += data.Length;
                Pad(output, written);
                written = GgufReader.AlignUp(written, Alignment);
            }
        }
        finally
        {
            // A failed write leaves no producer running behind the caller's back.
            if (next is not null)
                try { next.Wait(); } catch (AggregateException) { }
        }
    }

    private void Pad(Stream s, long position)
    {
        var pad = (int)(GgufReader.AlignUp(position, Alignment) - position);
        if (pad > 0) s.Write(new byte[pad]);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue value)
    {
        if (value.Type != GgufValueType.Array)
        {
            WriteScalar(w, value.Type, value.Value);
            return;
        }
        var array = (Array)value.Value;
        w.Write((uint)value.ElementType);
        w.Write((ulong)array.Length);
        switch (value.ElementType)
        {
            case GgufValueType.Array:
                foreach (GgufValue nested in array) WriteValue(w, nested); // each element is (type, count, data)
                break;
            case GgufValueType.String or GgufValueType.Bool:
                foreach (var item in array) WriteScalar(w, value.ElementType, item!);
                break;
            default:
                var bytes = new byte[Buffer.ByteLength(array)];
                Buffer.BlockCopy(array, 0, bytes, 0, bytes.Length);
                w.Write(bytes);
                break;
        }
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)v); break;
            case GgufValueType.Int8: w.Write((sbyte)v); break;
            case GgufValueType.UInt16: w.Write((ushort)v); break;
            case GgufValueType.Int16: w.Write((short)v); break;
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((bool)v ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    private sealed record PendingTensor(string Name, long[] Shape, GgmlType Type, long Size, Func<ReadOnlyMemory<byte>> Produce);
}
