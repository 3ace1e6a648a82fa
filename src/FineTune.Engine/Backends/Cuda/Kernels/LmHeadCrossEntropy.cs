using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Kernels;

/// <summary>
/// The language-model head and the cross-entropy loss fused over vocabulary chunks: the full
/// <c>[rows, vocab]</c> logits never exist, only one <c>[rows, chunk]</c> slice at a time. Gives
/// the loss per row and the gradient with respect to the hidden states; the head weight is
/// frozen (LoRA), so it gets no gradient. Per chunk: one GEMM for the logits, one kernel for the
/// online softmax, one GEMM that accumulates <c>softmax · W</c> into an fp32 buffer.
/// </summary>
public sealed class LmHeadCrossEntropy : IDisposable
{
    private readonly CudaKernels _kernels;
    private readonly DeviceBuffer _logits, _exp, _dhAcc, _runMax, _runSum, _targetLogit;

    /// <summary>Reserves the workspace for <paramref name="rows"/> tokens at a time.</summary>
    public LmHeadCrossEntropy(CudaKernels kernels, int rows, int hidden, int vocab, int chunk = 8192)
    {
        if (rows <= 0 || hidden <= 0 || vocab <= 0 || chunk <= 0 || hidden % 8 != 0)
            throw new ArgumentException("rows, vocab and chunk must be positive and hidden a positive multiple of 8.");
        _kernels = kernels;
        Rows = rows;
        Hidden = hidden;
        Vocab = vocab;
        Chunk = Math.Min(Math.Min(chunk, vocab), CudaKernels.MaxCrossEntropyChunk);
        var pool = kernels.Device.Memory;
        _logits = pool.Allocate((long)rows * Chunk * 4);
        _exp = pool.Allocate((long)rows * Chunk * 2);
        _dhAcc = pool.Allocate((long)rows * hidden * 4);
        _runMax = pool.Allocate(rows * 4L);
        _runSum = pool.Allocate(rows * 4L);
        _targetLogit = pool.Allocate(rows * 4L);
    }

    /// <summary>Tokens per call.</summary>
    public int Rows { get; }

    /// <summary>Hidden size.</summary>
    public int Hidden { get; }

    /// <summary>Vocabulary size.</summary>
    public int Vocab { get; }

    /// <summary>Vocabulary entries per chunk (at most 8192).</summary>
    public int Chunk { get; }

    /// <summary>Bytes of device workspace the head needs for <paramref name="rows"/> tokens (before the pool's rounding).</summary>
    public static long WorkspaceBytesFor(int rows, int hidden, int vocab, int chunk = 8192)
    {
        long c = Math.Min(Math.Min(chunk, vocab), CudaKernels.MaxCrossEntropyChunk);
        return rows * c * 6L + rows * (long)hidden * 4 + rows * 12L;
    }

    /// <summary>Bytes of device workspace this holds.</summary>
    public long WorkspaceBytes => _logits.Capacity + _exp.Capacity + _dhAcc.Capacity + _runMax.Capacity + _runSum.Capacity + _targetLogit.Capacity;

    /// <summary>
    /// loss[rows] (fp32; 0 where the target is negative, i.e. not a prediction target) and
    /// dHidden[rows, hidden] (bf16) = gradScale · d(loss)/d(hidden), from hidden[rows, hidden] (bf16),
    /// the head weight[vocab, hidden] (bf16) and targets[rows] (int32).
    /// </summary>
    public void Run(ulong dHidden, ulong loss, ulong hidden, ulong weight, ulong targets, float gradScale) =>
        Run(dHidden, loss, hidden, weight, targets, gradScale, Rows);

    /// <summary>
    /// As <see cref="Run(ulong, ulong, ulong, ulong, ulong, float)"/> over the first <paramref name="rows"/> rows (at most <see cref="Rows"/>);
    /// with <paramref name="logitSums"/> (fp32 [rows]) also each row's sum of logits over the vocabulary.
    /// </summary>
    public void Run(ulong dHidden, ulong loss, ulong hidden, ulong weight, ulong targets, float gradScale, int rows, ulong logitSums = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, Rows);
        var blas = _kernels.Blas;
        for (var v0 = 0; v0 < Vocab; v0 += Chunk)
        {
            var width = Math.Min(Chunk, Vocab - v0);
            var weightChunk = weight + (ulong)((long)v0 * Hidden * 2);
            blas.Gemm(hidden, false, weightChunk, true, _logits.Pointer, rows, width, Hidden, float32Output: true);
            if (logitSums != 0) _kernels.CrossEntropyRowSum(logitSums, _logits.Pointer, rows, width, first: v0 == 0);
            _kernels.CrossEntropyChunk(_exp.Pointer, _dhAcc.Pointer, _runMax.Pointer, _runSum.Pointer, _targetLogit.Pointer, _logits.Pointer, targets,
                rows, width, v0, Hidden, first: v0 == 0);
            blas.Gemm(_exp.Pointer, false, weightChunk, false, _dhAcc.Pointer, rows, Hidden, width, float32Output: true, beta: 1f);
        }
        _kernels.CrossEntropyFinalize(dHidden, loss, _dhAcc.Pointer, weight, targets, _runMax.Pointer, _runSum.Pointer, _targetLogit.Pointer, rows, Hidden, gradScale);
    }

    /// <summary>
    /// dHidden[rows, hidden] (bf16) = rowScale[row] · d(loss of the row)/d(hidden), from the sums the last
    /// <see cref="Run(ulong, ulong, ulong, ulong, ulong, float, int, ulong)"/> over the same rows left behind: a loss
    /// over whole sequences (DPO, ORPO) learns each row's scale from every row's loss, after the head has run.
    /// </summary>
    public void Gradient(ulong dHidden, ulong weight, ulong targets, ulong rowScale, int rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, Rows);
        _kernels.CrossEntropyFinalizeRows(dHidden, _dhAcc.Pointer, weight, targets, _runSum.Pointer, rowScale, rows, Hidden);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _logits.Dispose();
        _exp.Dispose();
        _dhAcc.Dispose();
        _runMax.Dispose();
        _runSum.Dispose();
        _targetLogit.Dispose();
    }
}
