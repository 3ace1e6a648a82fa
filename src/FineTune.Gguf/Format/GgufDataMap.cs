using System.IO.MemoryMappedFiles;

namespace FineTune.Gguf.Format;

/// <summary>
/// A GGUF file's tensor data mapped into memory read-only: a tensor's bytes are read straight from
/// the page cache where they are used, with no copy into an array first (as llama.cpp maps the file
/// it quantizes). Spans stay valid until the map is disposed.
/// </summary>
public sealed unsafe class GgufDataMap : IDisposable
{
    private readonly GgufFile _file;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;

    internal GgufDataMap(GgufFile file)
    {
        _file = file;
        _map = MemoryMappedFile.CreateFromFile(file.Path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
        }
        catch
        {
            _view?.Dispose();
            _map.Dispose();
            throw;
        }
        if (_view.Capacity < file.FileLength)
            throw new InvalidDataException($"{file.Path} is shorter ({_view.Capacity} bytes) than when its header was read ({file.FileLength}).");
    }

    /// <summary>The stored bytes of <paramref name="tensor"/> (bounds were checked when the header was read).</summary>
    public ReadOnlySpan<byte> TensorBytes(GgufTensorInfo tensor) =>
        new(_base + _file.DataOffset + (long)tensor.Offset, checked((int)tensor.ByteSize));

    /// <inheritdoc />
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
