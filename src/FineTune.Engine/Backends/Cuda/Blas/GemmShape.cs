namespace FineTune.Engine.Backends.Cuda.Blas;

/// <summary>
/// Everything that fixes a cuBLASLt plan of <see cref="CudaBlas.Gemm"/>: <c>C[M,N] = op(A)·op(B)</c>
/// with A, B stored row-major, their row strides, and the result's type.
/// </summary>
/// <remarks>
/// The training engine's products keep the batch's token rows as the rows of their row-major
/// operands. So a product whose A is not transposed has the token rows as M (a Linear layer's
/// output <c>X·Wᵀ</c> and input gradient <c>dY·W</c>), and one whose A is transposed sums over
/// them: K is the token rows (a weight gradient <c>dYᵀ·X</c>). The strides are the stored rows'
/// lengths, feature counts, never the token count. <see cref="TokenRows"/> names that dimension.
/// </remarks>
internal readonly record struct GemmShape(int M, int N, int K, bool TransposeA, bool TransposeB, bool Float32Output, int Lda, int Ldb, int Ldc)
{
    /// <summary>The dimension that is the batch's token rows: K when A is transposed, M otherwise.</summary>
    public int TokenRows => TransposeA ? K : M;

    /// <summary>The same product over <paramref name="rows"/> token rows.</summary>
    public GemmShape WithTokenRows(int rows) => TransposeA ? this with { K = rows } : this with { M = rows };
}
