namespace FineTune.Engine.Backends;

/// <summary>
/// The kernels the model's explicit forward and backward passes are written against. Buffers are
/// row-major float arrays addressed by offset; every kernel must produce the same result for the
/// same inputs on every call (fixed reduction order), which is what makes training reproducible.
/// The CPU backend is the reference a CUDA backend is tested against.
/// </summary>
public interface IComputeBackend
{
    /// <summary>A short name for logs and summaries, e.g. <c>cpu (2 threads)</c>.</summary>
    string Name { get; }

    /// <summary>
    /// C[m×n] (+)= A[m×k] · B[n×k]ᵀ, all row-major and contiguous: each output is a dot product of a
    /// row of A and a row of B. With <paramref name="accumulate"/> the product is added to C.
    /// </summary>
    void MatMulTransposed(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false);

    /// <summary>
    /// A form of the frozen B[n×k] that <see cref="MatMulTransposed(float[], int, float[], object, float[], int, int, int, int, bool)"/>
    /// multiplies with directly (packed panels on the CPU). B must not change while the result is in use.
    /// </summary>
    object PrepareTransposedOperand(float[] b, int n, int k);

    /// <summary>C[m×n] (+)= A[m×k] · B[n×k]ᵀ with B also given in its <see cref="PrepareTransposedOperand"/> form; same bytes as without it.</summary>
    void MatMulTransposed(float[] a, int aOffset, float[] b, object prepared, float[] c, int cOffset, int m, int n, int k, bool accumulate = false);

    /// <summary>C[m×n] (+)= A[m×k] · B[k×n], all row-major and contiguous.</summary>
    void MatMul(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false);

    /// <summary>
    /// C[m×n] (+)= A[m×k] · B[n×k]ᵀ (B's prepared form when <paramref name="prepared"/> is given), then
    /// C += A2[m×k2] · B2[n×k2]ᵀ: the same bytes as the two products one after the other (a frozen weight
    /// and its LoRA path). A backend may do both in one pass over C.
    /// </summary>
    void MatMulTransposedThen(float[] a, float[] b, object? prepared, float[] a2, float[] b2, float[] c, int m, int n, int k, int k2, bool accumulate = false)
    {
        if (prepared is null) MatMulTransposed(a, 0, b, 0, c, 0, m, n, k, accumulate);
        else MatMulTransposed(a, 0, b, prepared, c, 0, m, n, k, accumulate);
        MatMulTransposed(a2, 0, b2, 0, c, 0, m, n, k2, accumulate: true);
    }

    /// <summary>
    /// A form of the frozen B[k×n] that <see cref="MatMulThen"/> multiplies with directly (the backward
    /// pass's dy·W), or null when the backend has none. B must not change while the result is in use.
    /// </summary>
    object? PrepareOperand(float[] b, int k, int n) => null;

    /// <summary>
    /// C[m×n] (+)= A[m×k] · B[k×n] (B's <see cref="PrepareOperand"/> form when <paramref name="prepared"/> is
    /// given), then C += A2[m×k2] · B2[k2×n]: the same bytes as the two products one after the other.
    /// </summary>
    void MatMulThen(float[] a, float[] b, float[] a2, float[] b2, float[] c, int m, int n, int k, int k2, bool accumulate = false, object? prepared = null)
    {
        MatMul(a, 0, b, 0, c, 0, m, n, k, accumulate);
        MatMul(a2, 0, b2, 0, c, 0, m, n, k2, accumulate: true);
    }

    /// <summary>C[m×n] (+)= A[k×m]ᵀ · B[k×n], all row-major and contiguous (weight gradients: a sum over tokens).</summary>
    void MatMulTransposedA(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false);

    /// <summary>
    /// Products started until the returned scope is disposed may run together, in one parallel pass, when
    /// it is disposed: the caller promises that none of them reads what another writes, and reads none of
    /// their results before then. The bytes are those of running them one after the other. A backend
    /// without this runs each product when it is started.
    /// </summary>
    IDisposable Together() => NoScope.Instance;

    /// <summary>dst[cols×rows] = src[rows×cols]ᵀ.</summary>
    void Transpose(float[] src, int srcOffset, float[] dst, int dstOffset, int rows, int cols);

    /// <summary>Runs <paramref name="body"/> for 0..count-1 over the backend's threads; each index must write disjoint outputs.</summary>
    void For(int count, Action<int> body);
}

/// <summary>A scope with nothing to do at its end.</summary>
public sealed class NoScope : IDisposable
{
    /// <summary>The one instance.</summary>
    public static readonly NoScope Instance = new();

    private NoScope() { }

    /// <inheritdoc />
    public void Dispose() { }
}
