using System.Runtime.InteropServices;

namespace FineTune.Engine.Backends.Cuda.Interop;

/// <summary>cuBLASLt, bound at run time: matmul descriptors, layouts, heuristics and the matmul itself.</summary>
internal sealed unsafe class CublasLt
{
    public const int CUBLAS_COMPUTE_32F = 68;
    public const int CUDA_R_32F = 0;
    public const int CUDA_R_16BF = 14;
    public const int CUBLAS_OP_N = 0;
    public const int CUBLAS_OP_T = 1;
    public const int CUBLASLT_MATMUL_DESC_TRANSA = 3;
    public const int CUBLASLT_MATMUL_DESC_TRANSB = 4;
    public const int CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1;

    /// <summary>cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspace size, state, waves, reserved.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct HeuristicResult
    {
        public fixed ulong Algo[8];
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }

    public readonly string LoadedFrom;
    public readonly ulong Version;

    public readonly delegate* unmanaged<IntPtr*, int> cublasLtCreate;
    public readonly delegate* unmanaged<IntPtr, int> cublasLtDestroy;
    public readonly delegate* unmanaged<int, byte*> cublasLtGetStatusName;
    public readonly delegate* unmanaged<IntPtr*, int, int, int> cublasLtMatmulDescCreate;
    public readonly delegate* unmanaged<IntPtr, int> cublasLtMatmulDescDestroy;
    public readonly delegate* unmanaged<IntPtr, int, void*, nuint, int> cublasLtMatmulDescSetAttribute;
    public readonly delegate* unmanaged<IntPtr*, int, ulong, ulong, long, int> cublasLtMatrixLayoutCreate;
    public readonly delegate* unmanaged<IntPtr, int> cublasLtMatrixLayoutDestroy;
    public readonly delegate* unmanaged<IntPtr*, int> cublasLtMatmulPreferenceCreate;
    public readonly delegate* unmanaged<IntPtr, int> cublasLtMatmulPreferenceDestroy;
    public readonly delegate* unmanaged<IntPtr, int, void*, nuint, int> cublasLtMatmulPreferenceSetAttribute;
    public readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, int, HeuristicResult*, int*, int> cublasLtMatmulAlgoGetHeuristic;
    public readonly delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, void*, HeuristicResult*, int> cublasLtMatmulAlgoCheck;
    public readonly delegate* unmanaged<IntPtr, IntPtr, void*, ulong, IntPtr, ulong, IntPtr, void*, ulong, IntPtr, ulong, IntPtr, void*, ulong, nuint, IntPtr, int> cublasLtMatmul;

    public CublasLt(int driverVersion)
    {
        var names = LibraryNames.Versioned("cublasLt", driverVersion, windowsPattern: "cublasLt64_{0}.dll");
        var handle = NativeLibraryLocator.Load(
            "cuBLASLt", names, CudaErrors.CublasLtNotFound,
            "Install the CUDA toolkit, or `pip install nvidia-cublas` (CUDA 13) / `nvidia-cublas-cu12`.",
            out LoadedFrom);

        cublasLtCreate = (delegate* unmanaged<IntPtr*, int>)Get(handle, "cublasLtCreate");
        cublasLtDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cublasLtDestroy");
        cublasLtGetStatusName = (delegate* unmanaged<int, byte*>)Get(handle, "cublasLtGetStatusName");
        cublasLtMatmulDescCreate = (delegate* unmanaged<IntPtr*, int, int, int>)Get(handle, "cublasLtMatmulDescCreate");
        cublasLtMatmulDescDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cublasLtMatmulDescDestroy");
        cublasLtMatmulDescSetAttribute = (delegate* unmanaged<IntPtr, int, void*, nuint, int>)Get(handle, "cublasLtMatmulDescSetAttribute");
        cublasLtMatrixLayoutCreate = (delegate* unmanaged<IntPtr*, int, ulong, ulong, long, int>)Get(handle, "cublasLtMatrixLayoutCreate");
        cublasLtMatrixLayoutDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cublasLtMatrixLayoutDestroy");
        cublasLtMatmulPreferenceCreate = (delegate* unmanaged<IntPtr*, int>)Get(handle, "cublasLtMatmulPreferenceCreate");
        cublasLtMatmulPreferenceDestroy = (delegate* unmanaged<IntPtr, int>)Get(handle, "cublasLtMatmulPreferenceDestroy");
        cublasLtMatmulPreferenceSetAttribute = (delegate* unmanaged<IntPtr, int, void*, nuint, int>)Get(handle, "cublasLtMatmulPreferenceSetAttribute");
        cublasLtMatmulAlgoGetHeuristic = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, int, HeuristicResult*, int*, int>)Get(handle, "cublasLtMatmulAlgoGetHeuristic");
        cublasLtMatmulAlgoCheck = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, void*, HeuristicResult*, int>)Get(handle, "cublasLtMatmulAlgoCheck");
        cublasLtMatmul = (delegate* unmanaged<IntPtr, IntPtr, void*, ulong, IntPtr, ulong, IntPtr, void*, ulong, IntPtr, ulong, IntPtr, void*, ulong, nuint, IntPtr, int>)Get(handle, "cublasLtMatmul");
        Version = (ulong)((delegate* unmanaged<nuint>)Get(handle, "cublasLtGetVersion"))();
    }

    private static IntPtr Get(IntPtr handle, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address) ? address : throw new CudaException(name, -1, "SYMBOL_NOT_FOUND");

    public void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException(call, status, Marshal.PtrToStringAnsi((IntPtr)cublasLtGetStatusName(status)) ?? $"cublasStatus {status}");
    }
}
