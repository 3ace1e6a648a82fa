using System.IO.MemoryMappedFiles;
using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Weights;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header mapping
/// tensor names to dtype, shape and byte range, then the raw data. Every offset in the header is
/// checked against the file size before use, so a truncated or corrupt file is an FT3011 error
/// rather than an access violation.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L << 20;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorInfo> _tensors;
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _handle;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart, Dictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _dataStart = dataStart;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file this was opened from.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> entries of the header.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in header order.</summary>
    public IEnumerable<TensorInfo> Tensors => _tensors.Values;

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/>; FT3012 when absent.</summary>
    public TensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var t) ? t
            : throw new FineTuneException("FT3012", $"Tensor '{name}' is not in this safetensors file.", Path);

    /// <summary>Maps and validates a file.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new FineTuneException("FT3011", "Safetensors file does not exist.", path);
        var length = FineTune.Core.IO.FileLinks.Length(path);
        if (length < 8) throw Corrupt(path, "it is shorter than its 8-byte header length");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            var headerLength = view.ReadInt64(0);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > length)
                throw Corrupt(path, $"its header length {headerLength} does not fit the file ({length} bytes)");
            var headerBytes = new byte[headerLength];
            view.ReadArray(8, headerBytes, 0, headerBytes.Length);
            var dataStart = 8 + headerLength;
            var (tensors, metadata) = ParseHeader(path, headerBytes, length - dataStart);
            return new SafetensorsFile(path, map, view, dataStart, tensors, metadata);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Corrupt(path, "its header is not valid JSON: " + e.Message); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(path, "its header is not a JSON object");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in p.Value.EnumerateObject())
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                tensors[p.Name] = ParseTensor(path, p.Name, p.Value, dataLength);
            }
            return (tensors, metadata);
        }
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement e, long dataLength)
    {
        try
        {
            var dtype = TensorDTypes.Parse(e.GetProperty("dtype").GetString() ?? "", path, name);
            var shape = e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = e.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (shape.Any(d => d < 0) || offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                throw Corrupt(path, $"tensor '{name}' has offsets outside the file");
            var info = new TensorInfo(name, dtype, shape, offsets[0], offsets[1]);
            if (info.ElementCount * dtype.Size() != offsets[1] - offsets[0])
                throw Corrupt(path, $"tensor '{name}' has shape [{string.Join(", ", shape)}] but {offsets[1] - offsets[0]} bytes");
            return info;
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Corrupt(path, $"tensor '{name}' has a malformed header entry");
        }
    }

    /// <summary>Reads a tensor converted to F32.</summary>
    public float[] ReadF32(string name)
    {
        var info = Info(name);
        var result = new float[info.ElementCount];
        ReadF32(info, result);
        return result;
    }

    /// <summary>Reads a tensor converted to F32 into <paramref name="destination"/>.</summary>
    public unsafe void ReadF32(TensorInfo info, Span<float> destination)
    {
        if (destination.Length != info.ElementCount)
            throw new ArgumentException($"Destination holds {destination.Length} elements, tensor '{info.Name}' has {info.ElementCount}.");
        byte* basePtr = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
        try
        {
            var start = basePtr + _view.PointerOffset + _dataStart + info.Begin;
            // Convert in chunks: a Span is limited to int.MaxValue bytes.
            const int chunkElements = 1 << 24;
            var elementSize = info.DType.Size();
            for (long done = 0; done < info.ElementCount; done += chunkElements)
            {
                var n = (int)Math.Min(chunkElements, info.ElementCount - done);
                var src = new ReadOnlySpan<byte>(start + done * elementSize, n * elementSize);
                TensorDTypes.ToF32(info.DType, src, destination.Slice((int)done, n));
            }
        }
        finally
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    /// <summary>
    /// Reads a tensor as bfloat16 bits into <paramref name="destination"/> (see <see cref="TensorDTypes.ToBF16"/>).
    /// The bytes come through ordinary file reads rather than the mapping: pages touched through a
    /// mapping stay in this process's resident set, so streaming a whole model through it would hold
    /// the model's size in host memory, which this path exists to avoid.
    /// </summary>
    public void ReadBF16(TensorInfo info, Span<ushort> destination)
    {
        if (destination.Length != info.ElementCount)
            throw new ArgumentException($"Destination holds {destination.Length} elements, tensor '{info.Name}' has {info.ElementCount}.");
        _handle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var elementSize = info.DType.Size();
        var start = _dataStart + info.Begin;
        if (info.DType == TensorDType.BF16)
        {
            ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(destination), start);
            return;
        }
        const int chunkElements = 1 << 20;
        var chunk = new byte[Math.Min(chunkElements, info.ElementCount) * elementSize];
        for (long done = 0; done < info.ElementCount; done += chunkElements)
        {
            var n = (int)Math.Min(chunkElements, info.ElementCount - done);
            var raw = chunk.AsSpan(0, n * elementSize);
            ReadExactly(raw, start + done * elementSize);
            TensorDTypes.ToBF16(info.DType, raw, destination.Slice((int)done, n));
        }
    }

    private void ReadExactly(Span<byte> destination, long fileOffset)
    {
        while (!destination.IsEmpty)
        {
            var n = RandomAccess.Read(_handle!, destination, fileOffset);
            // The header's offsets were checked against the file's length when it was opened.
            if (n == 0) throw Corrupt(Path, "it ended while a tensor was read (was it truncated after opening?)");
            destination = destination[n..];
            fileOffset += n;
        }
    }

    private static FineTuneException Corrupt(string path, string why) =>
        new("FT3011", $"Safetensors file is corrupt or truncated: {why}.", path);

    /// <inheritdoc />
    public void Dispose()
    {
        _handle?.Dispose();
        _view.Dispose();
        _map.Dispose();
    }
}
