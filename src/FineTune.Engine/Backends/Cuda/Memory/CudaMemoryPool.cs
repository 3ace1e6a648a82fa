using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Backends.Cuda.Memory;

/// <summary>
/// A caching allocator over cuMemAlloc: sizes are rounded to a few classes and freed blocks wait
/// on a free list for the next request of their class, so a training step allocates from the
/// driver only in its first iteration. All work runs on the device's single stream, so a block
/// handed back while kernels that use it are still queued is safe to reuse: the next user's work
/// is queued after them.
/// </summary>
public sealed unsafe class CudaMemoryPool : IDisposable
{
    private const long SmallLimit = 1L << 20;
    private const long SmallGranule = 512;
    private const long LargeGranule = 2L << 20;

    private readonly CuDriver _cu;
    private readonly CudaStream _stream;
    private readonly Dictionary<long, Stack<ulong>> _free = [];
    private readonly object _gate = new();
    private bool _disposed;

    internal CudaMemoryPool(CuDriver cu, CudaStream stream)
    {
        _cu = cu;
        _stream = stream;
    }

    /// <summary>Bytes of the blocks handed out and not yet returned (rounded sizes).</summary>
    public long BytesInUse { get; private set; }

    /// <summary>The largest <see cref="BytesInUse"/> seen since creation or <see cref="ResetPeak"/>.</summary>
    public long PeakBytesInUse { get; private set; }

    /// <summary>Bytes held from the driver: in use plus cached on free lists.</summary>
    public long BytesReserved { get; private set; }

    /// <summary>Requests served from a free list.</summary>
    public long CacheHits { get; private set; }

    /// <summary>Requests that went to cuMemAlloc.</summary>
    public long DriverAllocations { get; private set; }

    /// <summary>Restarts peak tracking from the current use.</summary>
    public void ResetPeak()
    {
        lock (_gate)
            PeakBytesInUse = BytesInUse;
    }

    /// <summary>The size class a request of <paramref name="bytes"/> is served from.</summary>
    public static long RoundSize(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var granule = bytes <= SmallLimit ? SmallGranule : LargeGranule;
        return Math.Max(granule, (bytes + granule - 1) / granule * granule);
    }

    /// <summary>Allocates at least <paramref name="bytes"/> bytes (contents undefined).</summary>
    public DeviceBuffer Allocate(long bytes)
    {
        var size = RoundSize(bytes);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ulong ptr;
            if (_free.TryGetValue(size, out var list) && list.Count > 0)
            {
                ptr = list.Pop();
                CacheHits++;
            }
            else
            {
                ptr = AllocateFromDriver(size, bytes);
                DriverAllocations++;
                BytesReserved += size;
            }
            BytesInUse += size;
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
            return new DeviceBuffer(this, _cu, _stream, ptr, bytes, size);
        }
    }

    private ulong AllocateFromDriver(long size, long requested)
    {
        ulong ptr;
        var status = _cu.cuMemAlloc(&ptr, (nuint)size);
        if (status == CuDriver.CUDA_ERROR_OUT_OF_MEMORY)
        {
            // Cached blocks of other sizes may be what stands in the way.
            _stream.Synchronize();
            ReleaseCachedLocked();
            status = _cu.cuMemAlloc(&ptr, (nuint)size);
            if (status == CuDriver.CUDA_ERROR_OUT_OF_MEMORY)
                throw new FineTuneException(CudaErrors.OutOfMemory,
                    $"GPU out of memory allocating {Format(requested)} with {Format(BytesInUse)} in use by this run (peak {Format(PeakBytesInUse)}). " +
                    "Lower per_device_train_batch_size or max_seq_length, or turn on gradient_checkpointing.");
        }
        _cu.Check(status, "cuMemAlloc");
        return ptr;
    }

    internal void Return(ulong ptr, long size)
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            BytesInUse -= size;
            if (!_free.TryGetValue(size, out var list))
                _free[size] = list = new Stack<ulong>();
            list.Push(ptr);
        }
    }

    /// <summary>Gives every cached (free) block back to the driver.</summary>
    public void ReleaseCached()
    {
        lock (_gate)
        {
            _stream.Synchronize();
            ReleaseCachedLocked();
        }
    }

    private void ReleaseCachedLocked()
    {
        foreach (var (size, list) in _free)
        {
            while (list.Count > 0)
            {
                _cu.Check(_cu.cuMemFree(list.Pop()), "cuMemFree");
                BytesReserved -= size;
            }
        }
    }

    internal static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.00} GiB" : $"{bytes / (double)(1L << 20):0.0} MiB";

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _stream.Synchronize();
            ReleaseCachedLocked();
            _disposed = true;
        }
    }
}
