using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Backends.Cuda.Memory;

/// <summary>
/// A block of device memory from a <see cref="CudaMemoryPool"/>; disposing returns it to the pool.
/// Copies run on the device's stream and the host-side ones wait for it.
/// </summary>
public sealed unsafe class DeviceBuffer : IDisposable
{
    private readonly CudaMemoryPool _pool;
    private readonly CuDriver _cu;
    private readonly CudaStream _stream;
    private bool _returned;

    internal DeviceBuffer(CudaMemoryPool pool, CuDriver cu, CudaStream stream, ulong pointer, long bytes, long capacity)
    {
        _pool = pool;
        _cu = cu;
        _stream = stream;
        Pointer = pointer;
        Bytes = bytes;
        Capacity = capacity;
    }

    /// <summary>The device address.</summary>
    public ulong Pointer { get; }

    /// <summary>Bytes asked for.</summary>
    public long Bytes { get; }

    /// <summary>Bytes reserved (the pool's size class).</summary>
    public long Capacity { get; }

    /// <summary>Copies <paramref name="source"/> to the start of the buffer and waits for the copy.</summary>
    public void Upload<T>(ReadOnlySpan<T> source) where T : unmanaged
    {
        var bytes = (long)source.Length * sizeof(T);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Bytes);
        fixed (T* p = source)
            _cu.Check(_cu.cuMemcpyHtoDAsync(Pointer, p, (nuint)bytes, _stream.Handle), "cuMemcpyHtoDAsync");
        _stream.Synchronize();
    }

    /// <summary>Copies the start of the buffer into <paramref name="destination"/> after the queued work.</summary>
    public void Download<T>(Span<T> destination) where T : unmanaged
    {
        var bytes = (long)destination.Length * sizeof(T);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Bytes);
        fixed (T* p = destination)
            _cu.Check(_cu.cuMemcpyDtoHAsync(p, Pointer, (nuint)bytes, _stream.Handle), "cuMemcpyDtoHAsync");
        _stream.Synchronize();
    }

    /// <summary>Reads the whole buffer as an array of <typeparamref name="T"/>.</summary>
    public T[] Download<T>() where T : unmanaged
    {
        var result = new T[Bytes / sizeof(T)];
        Download<T>(result);
        return result;
    }

    /// <summary>Queues setting every byte to <paramref name="value"/>.</summary>
    public void FillBytes(byte value) =>
        _cu.Check(_cu.cuMemsetD8Async(Pointer, value, (nuint)Bytes, _stream.Handle), "cuMemsetD8Async");

    /// <summary>Queues setting every 32-bit word to <paramref name="value"/> (Bytes must be a multiple of 4).</summary>
    public void FillUInt32(uint value) =>
        _cu.Check(_cu.cuMemsetD32Async(Pointer, value, (nuint)(Bytes / 4), _stream.Handle), "cuMemsetD32Async");

    /// <summary>Queues a device-to-device copy of <paramref name="bytes"/> bytes from <paramref name="source"/>.</summary>
    public void CopyFrom(DeviceBuffer source, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Math.Min(Bytes, source.Bytes));
        _cu.Check(_cu.cuMemcpyDtoDAsync(Pointer, source.Pointer, (nuint)bytes, _stream.Handle), "cuMemcpyDtoDAsync");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_returned)
            return;
        _returned = true;
        _pool.Return(Pointer, Capacity);
    }
}
