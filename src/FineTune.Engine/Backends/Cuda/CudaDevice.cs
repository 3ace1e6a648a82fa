using System.Text;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda;

/// <summary>
/// One GPU opened through the driver API: its primary context (shared with any CUDA runtime
/// code in the process), one compute stream, and the caching memory pool. Not thread-safe:
/// one training loop drives one device.
/// </summary>
public sealed unsafe class CudaDevice : IDisposable
{
    private readonly CuDriver _cu;
    private readonly IntPtr _context;
    private bool _disposed;

    private CudaDevice(CuDriver cu, int ordinal)
    {
        _cu = cu;
        int device;
        cu.Check(cu.cuDeviceGet(&device, ordinal), "cuDeviceGet");
        Ordinal = device;
        var name = stackalloc byte[256];
        cu.Check(cu.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        Name = Encoding.ASCII.GetString(name, new ReadOnlySpan<byte>(name, 256).IndexOf((byte)0));
        ComputeMajor = DeviceAttribute(CuDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        ComputeMinor = DeviceAttribute(CuDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        MultiprocessorCount = DeviceAttribute(CuDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        L2CacheBytes = DeviceAttribute(CuDriver.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
        MaxSharedMemoryPerBlock = DeviceAttribute(CuDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        nuint total;
        cu.Check(cu.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem");
        TotalMemory = (long)total;
        int driverVersion;
        cu.Check(cu.cuDriverGetVersion(&driverVersion), "cuDriverGetVersion");
        DriverVersion = driverVersion;

        if (ComputeMajor < 8)
            throw new FineTuneException(CudaErrors.DeviceTooOld,
                $"GPU {ordinal} ({Name}) has compute capability {ComputeMajor}.{ComputeMinor}; the CUDA backend needs 8.0 or newer (bf16 tensor cores). Use --device cpu.");

        IntPtr context;
        cu.Check(cu.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        _context = context;
        MakeCurrent();
        Stream = new CudaStream(cu);
        Memory = new CudaMemoryPool(cu, Stream);
    }

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/>. Throws FT3101 when the driver library is missing and
    /// FT3104 when the driver reports no device.
    /// </summary>
    public static CudaDevice Open(int ordinal = 0)
    {
        var cu = CuDriver.Instance;
        var status = cu.cuInit(0);
        if (status != 0)
            throw new FineTuneException(CudaErrors.NoDevice,
                $"The CUDA driver ({cu.LoadedFrom}) could not initialise: {cu.ErrorName(status)}. Check `nvidia-smi`; in a container, pass the GPU through (e.g. `--gpus all`).");
        int count;
        cu.Check(cu.cuDeviceGetCount(&count), "cuDeviceGetCount");
        if (count <= ordinal)
            throw new FineTuneException(CudaErrors.NoDevice,
                count == 0 ? "The CUDA driver reports no GPU." : $"GPU {ordinal} was asked for but the driver reports {count} GPU(s).");
        return new CudaDevice(cu, ordinal);
    }

    /// <summary>
    /// How many GPUs the driver shows this process (<c>CUDA_VISIBLE_DEVICES</c> narrows them), without
    /// opening any. FT3101/FT3104 as <see cref="Open"/> when the driver is missing or fails.
    /// </summary>
    public static int Count()
    {
        var cu = CuDriver.Instance;
        var status = cu.cuInit(0);
        if (status != 0)
            throw new FineTuneException(CudaErrors.NoDevice,
                $"The CUDA driver ({cu.LoadedFrom}) could not initialise: {cu.ErrorName(status)}. Check `nvidia-smi`; in a container, pass the GPU through (e.g. `--gpus all`).");
        int count;
        cu.Check(cu.cuDeviceGetCount(&count), "cuDeviceGetCount");
        return count;
    }

    /// <summary>
    /// Whether a usable GPU is present; <paramref name="reason"/> says why not (for skipping tests
    /// and for <c>--device auto</c>).
    /// </summary>
    public static bool IsAvailable(out string reason)
    {
        try
        {
            using var device = Open();
            reason = $"{device.Name} (compute {device.ComputeMajor}.{device.ComputeMinor})";
            return true;
        }
        catch (FineTuneException e)
        {
            reason = $"{e.Code}: {e.Message}";
            return false;
        }
        catch (CudaException e)
        {
            reason = e.Message;
            return false;
        }
    }

    private int DeviceAttribute(int attribute)
    {
        int value;
        _cu.Check(_cu.cuDeviceGetAttribute(&value, attribute, Ordinal), "cuDeviceGetAttribute");
        return value;
    }

    internal CuDriver Driver => _cu;

    /// <summary>Device ordinal as the driver numbers it.</summary>
    public int Ordinal { get; }

    /// <summary>Marketing name, e.g. <c>NVIDIA H100 80GB HBM3</c>.</summary>
    public string Name { get; }

    /// <summary>Compute capability major (9 for Hopper).</summary>
    public int ComputeMajor { get; }

    /// <summary>Compute capability minor.</summary>
    public int ComputeMinor { get; }

    /// <summary>The NVRTC target for this device, e.g. <c>sm_90</c>.</summary>
    public string Architecture => $"sm_{ComputeMajor}{ComputeMinor}";

    /// <summary>Streaming multiprocessors.</summary>
    public int MultiprocessorCount { get; }

    /// <summary>L2 cache size in bytes.</summary>
    public int L2CacheBytes { get; }

    /// <summary>Shared memory a block may opt in to, in bytes.</summary>
    public int MaxSharedMemoryPerBlock { get; }

    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }

    /// <summary>Driver's CUDA version as 1000*major + 10*minor.</summary>
    public int DriverVersion { get; }

    /// <summary>Where libcuda was loaded from.</summary>
    public string DriverLibrary => _cu.LoadedFrom;

    /// <summary>The stream all work of this device is queued on.</summary>
    public CudaStream Stream { get; }

    /// <summary>The caching allocator for this device's memory.</summary>
    public CudaMemoryPool Memory { get; }

    /// <summary>
    /// When set, every kernel launch is followed by a synchronisation so an asynchronous fault is
    /// reported at the kernel that caused it (tests and benchmarks' correctness pass).
    /// </summary>
    public bool SynchronizeAfterLaunch { get; set; }

    /// <summary>Binds this device's context to the calling thread.</summary>
    public void MakeCurrent() => _cu.Check(_cu.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    /// <summary>Waits for all queued work; rethrows an asynchronous fault.</summary>
    public void Synchronize() => Stream.Synchronize();

    /// <summary>Free and total device memory as the driver reports them.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        nuint free, total;
        _cu.Check(_cu.cuMemGetInfo(&free, &total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        MakeCurrent();
        Memory.Dispose();
        Stream.Dispose();
        _cu.Check(_cu.cuDevicePrimaryCtxRelease(Ordinal), "cuDevicePrimaryCtxRelease");
    }
}
