using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Backends.Cuda.Memory;

/// <summary>
/// Page-locked host memory mapped into the GPU's address space (cuMemHostAlloc with DEVICEMAP):
/// kernels read it through <see cref="Pointer"/> over PCIe, and it takes no GPU memory. For tables a
/// step reads only a few rows of, such as a frozen input embedding (QLoRA keeps an untied one here:
/// a step reads rows × hidden × 2 bytes, 33 MB at Llama-3.1-8B's 4096 tokens, instead of holding 1 GiB).
/// </summary>
public sealed unsafe class MappedHostBuffer : IDisposable
{
    private readonly CuDriver _cu;
    private void* _host;

    private MappedHostBuffer(CuDriver cu, void* host, ulong pointer, long bytes)
    {
        _cu = cu;
        _host = host;
        Pointer = pointer;
        Bytes = bytes;
    }

    /// <summary>Allocates <paramref name="bytes"/> bytes (contents undefined); FT3140 when the host cannot pin them.</summary>
    internal static MappedHostBuffer Allocate(CudaDevice device, long bytes, string what = "the input embedding (load_in_4bit and gradient_checkpointing: offload keep an untied embedding in host memory)", string code = CudaErrors.HostEmbeddingNotPinned)
    {
        var cu = device.Driver;
        void* host;
        var status = cu.cuMemHostAlloc(&host, (nuint)Math.Max(bytes, 16), CuDriver.CU_MEMHOSTALLOC_PORTABLE | CuDriver.CU_MEMHOSTALLOC_DEVICEMAP);
        if (status == CuDriver.CUDA_ERROR_OUT_OF_MEMORY)
            throw new FineTuneException(code,
                $"Could not pin {CudaMemoryPool.Format(bytes)} of host memory for {what}. Free host memory or raise the locked-memory limit (ulimit -l).");
        cu.Check(status, "cuMemHostAlloc");
        ulong pointer;
        var mapped = cu.cuMemHostGetDevicePointer(&pointer, host, 0);
        if (mapped != 0)
        {
            cu.cuMemFreeHost(host);
            cu.Check(mapped, "cuMemHostGetDevicePointer");
        }
        return new MappedHostBuffer(cu, host, pointer, bytes);
    }

    /// <summary>The address kernels read it at.</summary>
    public ulong Pointer { get; }

    /// <summary>The host address, for copies.</summary>
    public void* HostAddress => _host;

    /// <summary>Bytes asked for.</summary>
    public long Bytes { get; }

    /// <summary>The memory as <typeparamref name="T"/> values, for the host to fill or read (no GPU work may be writing it).</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_host == null, this);
        return new Span<T>(_host, checked((int)(Bytes / sizeof(T))));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_host == null) return;
        _cu.cuMemFreeHost(_host);
        _host = null;
    }
}
