using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Backends.Cuda;

/// <summary>A CUDA stream: work queued on it runs in order, asynchronously to the host.</summary>
public sealed unsafe class CudaStream : IDisposable
{
    private readonly CuDriver _cu;
    private bool _disposed;

    internal CudaStream(CuDriver cu)
    {
        _cu = cu;
        IntPtr stream;
        // Non-blocking: never implicitly ordered against the legacy default stream that libraries may use.
        cu.Check(cu.cuStreamCreate(&stream, CuDriver.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        Handle = stream;
    }

    /// <summary>The CUstream handle.</summary>
    public IntPtr Handle { get; }

    /// <summary>Blocks until everything queued has run; rethrows an asynchronous fault.</summary>
    public void Synchronize() => _cu.Check(_cu.cuStreamSynchronize(Handle), "cuStreamSynchronize");

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _cu.Check(_cu.cuStreamDestroy(Handle), "cuStreamDestroy");
    }
}

/// <summary>A CUDA event, used to time work on a stream.</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private readonly CuDriver _cu;
    private bool _disposed;

    /// <summary>Creates a timing event on the device's context.</summary>
    public CudaEvent(CudaDevice device)
    {
        _cu = device.Driver;
        IntPtr handle;
        _cu.Check(_cu.cuEventCreate(&handle, CuDriver.CU_EVENT_DEFAULT), "cuEventCreate");
        Handle = handle;
    }

    /// <summary>The CUevent handle.</summary>
    public IntPtr Handle { get; }

    /// <summary>Marks the point in <paramref name="stream"/> the event completes at.</summary>
    public void Record(CudaStream stream) => _cu.Check(_cu.cuEventRecord(Handle, stream.Handle), "cuEventRecord");

    /// <summary>Waits until the event has completed.</summary>
    public void Synchronize() => _cu.Check(_cu.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Milliseconds of GPU time between <paramref name="start"/> and this event (both completed).</summary>
    public float ElapsedSince(CudaEvent start)
    {
        float ms;
        _cu.Check(_cu.cuEventElapsedTime(&ms, start.Handle, Handle), "cuEventElapsedTime");
        return ms;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _cu.Check(_cu.cuEventDestroy(Handle), "cuEventDestroy");
    }
}
