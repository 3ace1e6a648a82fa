using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Blas;

/// <summary>
/// Row-major matrix products on cuBLASLt: bf16 operands, fp32 accumulation, bf16 or fp32 result.
/// <c>C[M,N] = alpha · op(A) · op(B) + beta · C</c> where A is stored <c>[M,K]</c> (or <c>[K,M]</c>
/// when transposed) and B <c>[K,N]</c> (or <c>[N,K]</c>). A Linear layer <c>Y = X·Wᵀ</c> is
/// (X, W transposed); its input gradient <c>dX = dY·W</c> is (dY, W); its weight gradient
/// <c>dW = dYᵀ·X</c> is (dY transposed, X). One algorithm per shape is chosen once and reused:
/// cuBLASLt's heuristic picks it for the upper bound of the shape's bucket of token rows
/// (<see cref="PlanBuckets"/>) and the exact shape reuses it once <c>cublasLtMatmulAlgoCheck</c>
/// accepts it, so variable-length batches do not pay the heuristic at every new row count. The
/// choice depends on the shape alone, so results are reproducible run to run.
/// </summary>
public sealed unsafe class CudaBlas : IDisposable
{
    private const long WorkspaceBytes = 32L << 20;

    private readonly CudaDevice _device;
    private readonly CublasLt _lt;
    private readonly IntPtr _handle;
    private readonly DeviceBuffer _workspace;
    private readonly GemmPlanCache<Plan> _plans;
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
        _plans = new GemmPlanCache<Plan>(new Planner(this));
    }

    /// <summary>
    /// Whether product shapes share the algorithm chosen for their bucket of token rows
    /// (<see cref="PlanBuckets"/>, the default) instead of each exact shape running cuBLASLt's
    /// heuristic; false is the A/B in bench/train-cuda. Either way a shape's algorithm depends on
    /// the shape alone.
    /// </summary>
    public bool BucketedPlans { get => _plans.Bucketed; set => _plans.Bucketed = value; }

    /// <summary>Plans made since the last <see cref="ForgetPlans"/>: by the heuristic, adopted from a bucket, refused.</summary>
    public GemmPlanStats PlanStats => _plans.Stats;

    /// <summary>Gives every plan back, so the next products plan afresh (a benchmark's runs each from no plans).</summary>
    public void ForgetPlans() => _plans.Clear();

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
        var plan = _plans.Get(new GemmShape(m, n, k, transposeA, transposeB, float32Output, lda, ldb, ldc));

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
    private Plan CreateDescriptors(GemmShape key)
    {
        var plan = new Plan();
        IntPtr desc, la, lb, lc;
        _lt.Check(_lt.cublasLtMatmulDescCreate(&desc, CublasLt.CUBLAS_COMPUTE_32F, CublasLt.CUDA_R_32F), "cublasLtMatmulDescCreate");
        plan.Desc = desc;
        try
        {
            var opFirst = key.TransposeB ? CublasLt.CUBLAS_OP_T : CublasLt.CUBLAS_OP_N;
            var opSecond = key.TransposeA ? CublasLt.CUBLAS_OP_T : CublasLt.CUBLAS_OP_N;
            _lt.Check(_lt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSA, &opFirst, sizeof(int)), "cublasLtMatmulDescSetAttribute(TRANSA)");
            _lt.Check(_lt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB, &opSecond, sizeof(int)), "cublasLtMatmulDescSetAttribute(TRANSB)");

            // First operand: row-major B is [K,N] (column-major N x K) or, transposed, [N,K] (column-major K x N).
            if (key.TransposeB)
                _lt.Check(_lt.cublasLtMatrixLayoutCreate(&la, CublasLt.CUDA_R_16BF, (ulong)key.K, (ulong)key.N, key.Ldb), "cublasLtMatrixLayoutCreate(A)");
            else
                _lt.Check(_lt.cublasLtMatrixLayoutCreate(&la, CublasLt.CUDA_R_16BF, (ulong)key.N, (ulong)key.K, key.Ldb), "cublasLtMatrixLayoutCreate(A)");
            plan.LayoutA = la;
            // Second operand: row-major A is [M,K] (column-major K x M) or, transposed, [K,M] (column-major M x K).
            if (key.TransposeA)
                _lt.Check(_lt.cublasLtMatrixLayoutCreate(&lb, CublasLt.CUDA_R_16BF, (ulong)key.M, (ulong)key.K, key.Lda), "cublasLtMatrixLayoutCreate(B)");
            else
                _lt.Check(_lt.cublasLtMatrixLayoutCreate(&lb, CublasLt.CUDA_R_16BF, (ulong)key.K, (ulong)key.M, key.Lda), "cublasLtMatrixLayoutCreate(B)");
            plan.LayoutB = lb;
            var outType = key.Float32Output ? CublasLt.CUDA_R_32F : CublasLt.CUDA_R_16BF;
            _lt.Check(_lt.cublasLtMatrixLayoutCreate(&lc, outType, (ulong)key.N, (ulong)key.M, key.Ldc), "cublasLtMatrixLayoutCreate(C)");
            plan.LayoutC = lc;
        }
        catch
        {
            Release(plan);
            throw;
        }
        return plan;
    }

    private Plan FreshPlan(GemmShape key)
    {
        var plan = CreateDescriptors(key);
        IntPtr pref;
        _lt.Check(_lt.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
        try
        {
            ulong workspace = WorkspaceBytes;
            _lt.Check(_lt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(ulong)), "cublasLtMatmulPreferenceSetAttribute");
            CublasLt.HeuristicResult result;
            int count;
            _lt.Check(_lt.cublasLtMatmulAlgoGetHeuristic(_handle, plan.Desc, plan.LayoutA, plan.LayoutB, plan.LayoutC, plan.LayoutC, pref, 1, &result, &count), "cublasLtMatmulAlgoGetHeuristic");
            if (count == 0)
                throw new CudaException("cublasLtMatmulAlgoGetHeuristic", 0, "NO_ALGORITHM", $"no algorithm for M={key.M} N={key.N} K={key.K}");
            plan.Heuristic = result;
        }
        catch
        {
            Release(plan);
            throw;
        }
        finally
        {
            _lt.cublasLtMatmulPreferenceDestroy(pref);
        }
        return plan;
    }

    // The bucket bound's algorithm for the exact shape, if cuBLASLt accepts it here (tile and split
    // constraints, alignment, a workspace within ours); null sends the shape to the heuristic.
    private Plan? AdoptPlan(GemmShape key, Plan model)
    {
        var plan = CreateDescriptors(key);
        var algo = model.Heuristic;
        CublasLt.HeuristicResult check;
        var status = _lt.cublasLtMatmulAlgoCheck(_handle, plan.Desc, plan.LayoutA, plan.LayoutB, plan.LayoutC, plan.LayoutC, algo.Algo, &check);
        if (status != 0 || check.State != 0 || check.WorkspaceSize > (nuint)WorkspaceBytes)
        {
            Release(plan);
            return null;
        }
        algo.WorkspaceSize = check.WorkspaceSize;
        algo.WavesCount = check.WavesCount;
        plan.Heuristic = algo;
        return plan;
    }

    private void Release(Plan plan)
    {
        if (plan.LayoutA != 0) _lt.cublasLtMatrixLayoutDestroy(plan.LayoutA);
        if (plan.LayoutB != 0) _lt.cublasLtMatrixLayoutDestroy(plan.LayoutB);
        if (plan.LayoutC != 0) _lt.cublasLtMatrixLayoutDestroy(plan.LayoutC);
        if (plan.Desc != 0) _lt.cublasLtMatmulDescDestroy(plan.Desc);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _plans.Dispose();
        _workspace.Dispose();
        _lt.Check(_lt.cublasLtDestroy(_handle), "cublasLtDestroy");
    }

    private sealed class Plan
    {
        public IntPtr Desc, LayoutA, LayoutB, LayoutC;
        public CublasLt.HeuristicResult Heuristic;
    }

    private sealed class Planner(CudaBlas blas) : IGemmPlanner<Plan>
    {
        public Plan Fresh(GemmShape shape) => blas.FreshPlan(shape);
        public Plan? Adopt(GemmShape shape, Plan model) => blas.AdoptPlan(shape, model);
        public void Release(Plan plan) => blas.Release(plan);
    }
}
