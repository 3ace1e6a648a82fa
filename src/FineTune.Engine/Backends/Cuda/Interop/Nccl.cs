using System.Runtime.InteropServices;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Backends.Cuda.Interop;

/// <summary>NCCL's opaque 128-byte id of a communicator (<c>ncclUniqueId</c>), passed by value to <c>ncclCommInitRank</c>.</summary>
[StructLayout(LayoutKind.Sequential, Size = Nccl.UniqueIdBytes)]
internal unsafe struct NcclUniqueId
{
    public fixed byte Internal[Nccl.UniqueIdBytes];
}

/// <summary>
/// The NCCL functions multi-GPU training uses, bound at run time from libnccl the first time
/// several ranks train (a one-GPU run never loads it), so the engine runs where NCCL is absent and
/// says so (FT3150) only when it is needed. Signatures are those of <c>nccl.h</c> (2.x).
/// </summary>
internal sealed unsafe class Nccl
{
    public const int UniqueIdBytes = 128;

    // ncclResult_t
    public const int Success = 0;
    public const int InProgress = 7;
    // ncclDataType_t
    public const int Float32 = 7;
    public const int Float64 = 8;
    // ncclRedOp_t
    public const int Sum = 0;
    public const int Max = 2;

    private static readonly Lazy<Nccl> Shared = new(() => new Nccl(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The process-wide binding; throws FT3150 when libnccl is not there.</summary>
    public static Nccl Instance => Shared.Value;

    public readonly string LoadedFrom;

    public readonly delegate* unmanaged<int*, int> ncclGetVersion;
    public readonly delegate* unmanaged<NcclUniqueId*, int> ncclGetUniqueId;
    public readonly delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int> ncclCommInitRank;
    public readonly delegate* unmanaged<IntPtr, int> ncclCommDestroy;
    public readonly delegate* unmanaged<IntPtr, int> ncclCommAbort;
    public readonly delegate* unmanaged<IntPtr, int*, int> ncclCommGetAsyncError;
    public readonly delegate* unmanaged<int, byte*> ncclGetErrorString;
    public readonly delegate* unmanaged<IntPtr, byte*> ncclGetLastError;
    public readonly delegate* unmanaged<ulong, ulong, nuint, int, int, IntPtr, IntPtr, int> ncclAllReduce;
    public readonly delegate* unmanaged<ulong, ulong, nuint, int, IntPtr, IntPtr, int> ncclAllGather;
    public readonly delegate* unmanaged<int> ncclGroupStart;
    public readonly delegate* unmanaged<int> ncclGroupEnd;

    private Nccl()
    {
        var handle = NativeLibraryLocator.Load(
            "NCCL (NVIDIA's collective communication library, needed to train on several GPUs)",
            ["libnccl.so.2", "libnccl.so"],
            CudaErrors.NcclNotFound,
            "Install it with `pip install nvidia-nccl-cu13` (or -cu12), or NVIDIA's libnccl2 package; one GPU trains without it (--gpus 1).",
            out LoadedFrom);
        ncclGetVersion = (delegate* unmanaged<int*, int>)Get(handle, "ncclGetVersion");
        ncclGetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Get(handle, "ncclGetUniqueId");
        ncclCommInitRank = (delegate* unmanaged<IntPtr*, int, NcclUniqueId, int, int>)Get(handle, "ncclCommInitRank");
        ncclCommDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "ncclCommDestroy");
        ncclCommAbort = (delegate* unmanaged<IntPtr, int>)Get(handle, "ncclCommAbort");
        ncclCommGetAsyncError = (delegate* unmanaged<IntPtr, int*, int>)Get(handle, "ncclCommGetAsyncError");
        ncclGetErrorString = (delegate* unmanaged<int, byte*>)Get(handle, "ncclGetErrorString");
        ncclGetLastError = (delegate* unmanaged<IntPtr, byte*>)Get(handle, "ncclGetLastError");
        ncclAllReduce = (delegate* unmanaged<ulong, ulong, nuint, int, int, IntPtr, IntPtr, int>)Get(handle, "ncclAllReduce");
        ncclAllGather = (delegate* unmanaged<ulong, ulong, nuint, int, IntPtr, IntPtr, int>)Get(handle, "ncclAllGather");
        ncclGroupStart = (delegate* unmanaged<int>)Get(handle, "ncclGroupStart");
        ncclGroupEnd = (delegate* unmanaged<int>)Get(handle, "ncclGroupEnd");
    }

    private static IntPtr Get(IntPtr handle, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new FineTuneException(CudaErrors.NcclNotFound, $"The NCCL library that loaded has no {name}: it is older than 2.13; install a newer NCCL.");

    /// <summary>The version as NCCL prints it, e.g. 2.27.7.</summary>
    public string Version
    {
        get
        {
            int v;
            Check(ncclGetVersion(&v), "ncclGetVersion", IntPtr.Zero);
            return v >= 10000 ? $"{v / 10000}.{v / 100 % 100}.{v % 100}" : $"{v / 1000}.{v / 100 % 10}.{v % 100}";
        }
    }

    /// <summary>Throws FT3151 with NCCL's own words unless <paramref name="status"/> is ncclSuccess.</summary>
    public void Check(int status, string call, IntPtr comm)
    {
        if (status == Success) return;
        throw new FineTuneException(CudaErrors.NcclFailed, $"{call} failed: {Describe(status, comm)}.");
    }

    /// <summary>NCCL's name for a status and, when it has one, its last error message.</summary>
    public string Describe(int status, IntPtr comm)
    {
        var name = Marshal.PtrToStringAnsi((IntPtr)ncclGetErrorString(status)) ?? $"ncclResult {status}";
        var last = Marshal.PtrToStringAnsi((IntPtr)ncclGetLastError(comm));
        return string.IsNullOrWhiteSpace(last) ? $"{name} ({status})" : $"{name} ({status}): {last.Trim()}";
    }
}
