using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Blas;

/// <summary>
/// Row-major matrix products on cuBLASLt: bf16 operands, fp32 accumulation, bf16 or fp32 result.
/// <c>C[M,N] = alpha · op(A) · op(B) + beta · C</c> where A is stored <c>[M,K]</c> (or <c>[K,M]</c>
/// when transposed) and B <c>[K,N]</c> (or <c>[N,K]</c>). A Linear layer <c>Y = X·Wᵀ</c> is
/// (X, W transposed); its input gradient <c>dX = dY·W</c> is (dY, W); its weight gradient
/// <c>dW = dYᵀ·X</c> is (dY transposed, X). One algorithm per shape is chosen by cuBLASLt's
/// heuristic once and reused, so results are reproducible run to run.
/// </summary>
public sealed unsafe class CudaBlas : IDisposable
{
    private const long WorkspaceBytes = 32L << 20;

    private readonly CudaDevice _device;
    private readonly CublasLt _lt;
    private readonly IntPtr _handle;
    private readonly DeviceBuffer _workspace;
    private readonly Dictionary<PlanKey, Plan> _plans = [];
    private bool _disposed;

    /// <summary>Binds cuBLASLt (FT3103 when missing) and reserves its workspace.</summary>
    public CudaBlas(CudaDevice device)
    {
        _device = device;
        _lt = new CublasLt(device.DriverVersion);
        IntPtr handle;
        _lt.Check(_lt.cublasLtCreate(&handle), "cublasLtCreate");
        _handle = handle;
        _workspace = device.Memory.Allocate(WorkspaceBytes);
    }

    /// <summary>Where cuBLASLt was loaded from.</summary>
    public string Library => _lt.LoadedFrom;

    /// <summary>cuBLASLt's version number (e.g. 130001).</summary>
    public ulong Version => _lt.Version;

    /// <summary>
    /// Queues <c>C = alpha·op(A)·op(B) + beta·C</c> (see the class summary for the layouts). With an
    /// <paramref name="addend"/> (a device address of C's shape and type) the product is added to it
    /// instead of to C: <c>C = alpha·op(A)·op(B) + beta·addend</c>, a residual connection in the same pass.
    /// <paramref name="lda"/>, <paramref name="ldb"/>, <paramref name="ldc"/>: the row strides (elements) of the
    /// stored row-major matrices when they are views into wider ones (0: dense), e.g. one projection's
    /// LoRA columns in a group's <c>[n, 3r]</c> buffer.
    /// </summary>
    public void Gemm(ulong a, bool transposeA, ulong b, bool transposeB, ulong c, int m, int n, int k,
        bool float32Output = false, float alpha = 1f, float beta = 0f, ulong addend = 0, int lda = 0, int ldb = 0, int ldc = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(m);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        // Dense strides: the stored row lengths.
        int denseA = transposeA ? m : k, denseB = transposeB ? k : n;
        lda = lda == 0 ? denseA : lda;
        ldb = ldb == 0 ? denseB : ldb;
        ldc = ldc == 0 ? n : ldc;
        if (lda < denseA || ldb < denseB || ldc < n) throw new ArgumentOutOfRangeException(nameof(lda), "A row stride is shorter than its row.");
        var key = new PlanKey(m, n, k, transposeA, transposeB, float32Output, lda, ldb, ldc);
        if (!_plans.TryGetValue(key, out var plan))
            _plans[key] = plan = CreatePlan(key);

        var algo = plan.Heuristic;
        var input = addend != 0 ? addend : c;
        _lt.Check(_lt.cublasLtMatmul(_handle, plan.Desc, &alpha, b, plan.LayoutA, a, plan.LayoutB, &beta, input, plan.LayoutC, c, plan.LayoutC,
            algo.Algo, _workspace.Pointer, (nuint)WorkspaceBytes, _device.Stream.Handle), "cublasLtMatmul");
        if (_device.SynchronizeAfterLaunch)
            _device.Stream.Synchronize();
    }

    // cuBLASLt is column-major: a row-major [R,C] matrix is a column-major [C,R] one. So the
    // row-major product C = op(A)·op(B) is computed as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ,
    // passing B as cuBLASLt's first operand and A as its second.
    private Plan CreatePlan(PlanKey key)
    {
        var plan = new Plan();
        IntPtr desc, la, lb, lc, pref;
        _lt.Check(_lt.cublasLtMatmulDescCreate(&desc, CublasLt.CUBLAS_COMPUTE_32F, CublasLt.CUDA_R_32F), "cublasLtMatmulDescCreate");
        plan.Desc = desc;
        var opFirst = key.TransposeB ? CublasLt.CUBLAS_OP_T : CublasLt.CUBLAS_OP_N;
        var opSecond = key.TransposeA ? CublasLt.CUBLAS_OP_T : CublasLt.CUBLAS_OP_N;
        _lt.Check(_lt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSA, &opFirst, sizeof(int)), "cublasLtMatmulDescSetAttribute(TRANSA)");
        _lt.Check(_lt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB, &opSecond, sizeof(int)), "cublasLtMatmulDescSetAttribute(TRANSB)");

        // First operand: row-major B is [K,N] (column-major N x K) or, transposed, [N,K] (column-major K x N).
        if (key.TransposeB)
            _lt.Check(_lt.cublasLtMatrixLayoutCreate(&la, CublasLt.CUDA_R_16BF, (ulong)key.K, (ulong)key.N, key.Ldb), "cublasLtMatrixLayoutCreate(A)");
        else
            _lt.Check(_lt.cublasLtMatrixLayoutCreate(&la, CublasLt.CUDA_R_16BF, (ulong)key.N, (ulong)key.K, key.Ldb), "cublasLtMatrixLayoutCreate(A)");
        // Second operand: row-major A is [M,K] (column-major K x M) or, transposed, [K,M] (column-major M x K).
        if (key.TransposeA)
            _lt.Check(_lt.cublasLtMatrixLayoutCreate(&lb, CublasLt.CUDA_R_16BF, (ulong)key.M, (ulong)key.K, key.Lda), "cublasLtMatrixLayoutCreate(B)");
        else
            _lt.Check(_lt.cublasLtMatrixLayoutCreate(&lb, CublasLt.CUDA_R_16BF, (ulong)key.K, (ulong)key.M, key.Lda), "cublasLtMatrixLayoutCreate(B)");
        var outType = key.Float32Output ? CublasLt.CUDA_R_32F : CublasLt.CUDA_R_16BF;
        _lt.Check(_lt.cublasLtMatrixLayoutCreate(&lc, outType, (ulong)key.N, (ulong)key.M, key.Ldc), "cublasLtMatrixLayoutCreate(C)");
        plan.LayoutA = la;
        plan.LayoutB = lb;
        plan.LayoutC = lc;

        _lt.Check(_lt.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
        try
        {
            ulong workspace = WorkspaceBytes;
            _lt.Check(_lt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(ulong)), "cublasLtMatmulPreferenceSetAttribute");
            CublasLt.HeuristicResult result;
            int count;
            _lt.Check(_lt.cublasLtMatmulAlgoGetHeuristic(_handle, desc, la, lb, lc, lc, pref, 1, &result, &count), "cublasLtMatmulAlgoGetHeuristic");
            if (count == 0)
                throw new CudaException("cublasLtMatmulAlgoGetHeuristic", 0, "NO_ALGORITHM", $"no algorithm for M={key.M} N={key.N} K={key.K}");
            plan.Heuristic = result;
        }
        finally
        {
            _lt.cublasLtMatmulPreferenceDestroy(pref);
        }
        return plan;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var plan in _plans.Values)
        {
            _lt.cublasLtMatrixLayoutDestroy(plan.LayoutA);
            _lt.cublasLtMatrixLayoutDestroy(plan.LayoutB);
            _lt.cublasLtMatrixLayoutDestroy(plan.LayoutC);
            _lt.cublasLtMatmulDescDestroy(plan.Desc);
        }
        _workspace.Dispose();
        _lt.Check(_lt.cublasLtDestroy(_handle), "cublasLtDestroy");
    }

    private readonly record struct PlanKey(int M, int N, int K, bool TransposeA, bool TransposeB, bool Float32Output, int Lda, int Ldb, int Ldc);

    private sealed class Plan
    {
        public IntPtr Desc, LayoutA, LayoutB, LayoutC;
        public CublasLt.HeuristicResult Heuristic;
    }
}
