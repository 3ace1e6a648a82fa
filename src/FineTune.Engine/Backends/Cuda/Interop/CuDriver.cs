using System.Runtime.InteropServices;

namespace FineTune.Engine.Backends.Cuda.Interop;

/// <summary>
/// The CUDA driver API functions the backend uses, bound at run time from libcuda so the engine
/// loads on machines without a GPU. Every call goes through <see cref="Check"/>.
/// </summary>
internal sealed unsafe class CuDriver
{
    public const int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public const int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    public const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public const int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    public const int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    public const int CU_STREAM_NON_BLOCKING = 1;
    public const int CU_EVENT_DEFAULT = 0;
    public const int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public const int CUDA_ERROR_NOT_READY = 600;
    public const uint CU_MEMHOSTALLOC_PORTABLE = 1;
    public const uint CU_MEMHOSTALLOC_DEVICEMAP = 2;

    private static readonly Lazy<CuDriver> Shared = new(() => new CuDriver(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The process-wide binding; throws FT3101 when libcuda is not there.</summary>
    public static CuDriver Instance => Shared.Value;

    public readonly string LoadedFrom;

    public readonly delegate* unmanaged<uint, int> cuInit;
    public readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;
    public readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    public readonly delegate* unmanaged<IntPtr*, int, int> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease;
    public readonly delegate* unmanaged<IntPtr, int> cuCtxSetCurrent;
    public readonly delegate* unmanaged<int> cuCtxSynchronize;
    public readonly delegate* unmanaged<IntPtr*, uint, int> cuStreamCreate;
    public readonly delegate* unmanaged<IntPtr, int> cuStreamDestroy;
    public readonly delegate* unmanaged<IntPtr, int> cuStreamSynchronize;
    public readonly delegate* unmanaged<IntPtr, int> cuStreamQuery;
    public readonly delegate* unmanaged<IntPtr, IntPtr, uint, int> cuStreamWaitEvent;
    public readonly delegate* unmanaged<IntPtr*, uint, int> cuEventCreate;
    public readonly delegate* unmanaged<IntPtr, int> cuEventDestroy;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> cuEventRecord;
    public readonly delegate* unmanaged<IntPtr, int> cuEventSynchronize;
    public readonly delegate* unmanaged<float*, IntPtr, IntPtr, int> cuEventElapsedTime;
    public readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc;
    public readonly delegate* unmanaged<ulong, int> cuMemFree;
    public readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    public readonly delegate* unmanaged<void**, nuint, uint, int> cuMemHostAlloc;
    public readonly delegate* unmanaged<ulong*, void*, uint, int> cuMemHostGetDevicePointer;
    public readonly delegate* unmanaged<void*, int> cuMemFreeHost;
    public readonly delegate* unmanaged<ulong, void*, nuint, IntPtr, int> cuMemcpyHtoDAsync;
    public readonly delegate* unmanaged<void*, ulong, nuint, IntPtr, int> cuMemcpyDtoHAsync;
    public readonly delegate* unmanaged<ulong, ulong, nuint, IntPtr, int> cuMemcpyDtoDAsync;
    public readonly delegate* unmanaged<ulong, byte, nuint, IntPtr, int> cuMemsetD8Async;
    public readonly delegate* unmanaged<ulong, uint, nuint, IntPtr, int> cuMemsetD32Async;
    public readonly delegate* unmanaged<IntPtr*, void*, int> cuModuleLoadData;
    public readonly delegate* unmanaged<IntPtr, int> cuModuleUnload;
    public readonly delegate* unmanaged<IntPtr*, IntPtr, byte*, int> cuModuleGetFunction;
    public readonly delegate* unmanaged<IntPtr, int, int, int> cuFuncSetAttribute;
    public readonly delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int> cuLaunchKernel;
    // CUDA graphs (CudaGraph): stream capture, instantiation, replay.
    public const int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    public readonly delegate* unmanaged<IntPtr, int, int> cuStreamBeginCapture;
    public readonly delegate* unmanaged<IntPtr, IntPtr*, int> cuStreamEndCapture;
    public readonly delegate* unmanaged<IntPtr*, IntPtr, ulong, int> cuGraphInstantiateWithFlags;
    public readonly delegate* unmanaged<IntPtr, IntPtr, int> cuGraphLaunch;
    public readonly delegate* unmanaged<IntPtr, IntPtr*, nuint*, int> cuGraphGetNodes;
    public readonly delegate* unmanaged<IntPtr, int> cuGraphExecDestroy;
    public readonly delegate* unmanaged<IntPtr, int> cuGraphDestroy;

    private CuDriver()
    {
        var handle = NativeLibraryLocator.Load(
            "The NVIDIA driver's CUDA library",
            OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"],
            CudaErrors.DriverNotFound,
            "It comes with the NVIDIA driver (not the toolkit): install the driver for your GPU.",
            out LoadedFrom);

        cuInit = (delegate* unmanaged<uint, int>)Get(handle, "cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)Get(handle, "cuDriverGetVersion");
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Get(handle, "cuGetErrorName");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)Get(handle, "cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)Get(handle, "cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Get(handle, "cuDeviceGetName");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Get(handle, "cuDeviceGetAttribute");
        cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Get(handle, "cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<IntPtr*, int, int>)Get(handle, "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)Get(handle, "cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)Get(handle, "cuCtxSynchronize");
        cuStreamCreate = (delegate* unmanaged<IntPtr*, uint, int>)Get(handle, "cuStreamCreate");
        cuStreamDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuStreamDestroy_v2");
        cuStreamSynchronize = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuStreamSynchronize");
        cuStreamQuery = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuStreamQuery");
        cuStreamWaitEvent = (delegate* unmanaged<IntPtr, IntPtr, uint, int>)Get(handle, "cuStreamWaitEvent");
        cuEventCreate = (delegate* unmanaged<IntPtr*, uint, int>)Get(handle, "cuEventCreate");
        cuEventDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuEventDestroy_v2");
        cuEventRecord = (delegate* unmanaged<IntPtr, IntPtr, int>)Get(handle, "cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuEventSynchronize");
        cuEventElapsedTime = (delegate* unmanaged<float*, IntPtr, IntPtr, int>)Get(handle, "cuEventElapsedTime");
        cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)Get(handle, "cuMemAlloc_v2");
        cuMemFree = (delegate* unmanaged<ulong, int>)Get(handle, "cuMemFree_v2");
        cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)Get(handle, "cuMemGetInfo_v2");
        cuMemHostAlloc = (delegate* unmanaged<void**, nuint, uint, int>)Get(handle, "cuMemHostAlloc");
        cuMemHostGetDevicePointer = (delegate* unmanaged<ulong*, void*, uint, int>)Get(handle, "cuMemHostGetDevicePointer_v2");
        cuMemFreeHost = (delegate* unmanaged<void*, int>)Get(handle, "cuMemFreeHost");
        cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, IntPtr, int>)Get(handle, "cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, IntPtr, int>)Get(handle, "cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, IntPtr, int>)Get(handle, "cuMemcpyDtoDAsync_v2");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, IntPtr, int>)Get(handle, "cuMemsetD8Async");
        cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, IntPtr, int>)Get(handle, "cuMemsetD32Async");
        cuModuleLoadData = (delegate* unmanaged<IntPtr*, void*, int>)Get(handle, "cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)Get(handle, "cuModuleGetFunction");
        cuFuncSetAttribute = (delegate* unmanaged<IntPtr, int, int, int>)Get(handle, "cuFuncSetAttribute");
        cuLaunchKernel = (delegate* unmanaged<IntPtr, uint, uint, uint, uint, uint, uint, uint, IntPtr, void**, void**, int>)Get(handle, "cuLaunchKernel");
        cuStreamBeginCapture = (delegate* unmanaged<IntPtr, int, int>)Get(handle, "cuStreamBeginCapture_v2");
        cuStreamEndCapture = (delegate* unmanaged<IntPtr, IntPtr*, int>)Get(handle, "cuStreamEndCapture");
        cuGraphInstantiateWithFlags = (delegate* unmanaged<IntPtr*, IntPtr, ulong, int>)Get(handle, "cuGraphInstantiateWithFlags");
        cuGraphLaunch = (delegate* unmanaged<IntPtr, IntPtr, int>)Get(handle, "cuGraphLaunch");
        cuGraphGetNodes = (delegate* unmanaged<IntPtr, IntPtr*, nuint*, int>)Get(handle, "cuGraphGetNodes");
        cuGraphExecDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuGraphExecDestroy");
        cuGraphDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cuGraphDestroy");
    }

    private static IntPtr Get(IntPtr handle, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new CudaException(name, -1, "SYMBOL_NOT_FOUND", "the CUDA driver is older than this backend needs (CUDA 12 or newer)");

    /// <summary>The driver's name for a status code, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string ErrorName(int status)
    {
        byte* name = null;
        return cuGetErrorName(status, &name) == 0 && name != null ? Marshal.PtrToStringAnsi((IntPtr)name) ?? $"CUresult {status}" : $"CUresult {status}";
    }

    /// <summary>Throws <see cref="CudaException"/> unless <paramref name="status"/> is CUDA_SUCCESS.</summary>
    public void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException(call, status, ErrorName(status));
    }
}
