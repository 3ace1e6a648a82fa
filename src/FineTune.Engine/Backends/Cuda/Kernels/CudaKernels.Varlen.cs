namespace FineTune.Engine.Backends.Cuda.Kernels;

public sealed partial class CudaKernels
{
    /// <summary>
    /// <see cref="AttentionForward"/> over every sequence of a variable-length batch in one launch
    /// (<see cref="VarlenAttention"/>): each sequence attends to itself only, with the same values the
    /// per-sequence launches give. <paramref name="heads"/> gives the heads, head dimension, window and
    /// scale (its Batch and SeqLen are not used beyond validation).
    /// </summary>
    public void AttentionForwardVarlen(ulong output, ulong lse, ulong q, ulong k, ulong v, AttentionShape heads, VarlenAttentionDevice batch)
    {
        heads.Validate();
        var (file, suffix, threads, rows, shared) = ForwardKernels(heads.HeadDim);
        var (table, count) = Table(batch, rows);
        Kernel(file, "attention_forward" + suffix + "_varlen", $"HEAD_DIM={heads.HeadDim}").Launch(
            (heads.QueryHeads * heads.Chunks, count, 1), threads, shared,
            output, lse, q, k, v, table, heads.QueryHeads, heads.KvHeads, heads.Scale, heads.Window);
    }

    /// <summary><see cref="AttentionBackward"/> (all stages, the fused launch) over a variable-length batch; <paramref name="delta"/> is scratch of rows x heads floats.</summary>
    public void AttentionBackwardVarlen(ulong dq, ulong dk, ulong dv, ulong q, ulong k, ulong v, ulong output, ulong dout, ulong lse, ulong delta,
        AttentionShape heads, VarlenAttentionDevice batch)
    {
        heads.Validate();
        var define = $"HEAD_DIM={heads.HeadDim}";
        var deltaThreads = (long)batch.Rows * heads.QueryHeads * (heads.HeadDim / 8);
        Kernel("attention.cu", "attention_backward_delta_varlen", define).Launch(((int)((deltaThreads + Threads - 1) / Threads), 1, 1), Threads, 0,
            delta, dout, output, batch.Starts, batch.Sequences, batch.Rows, heads.QueryHeads);
        // Shared memory as the uniform fused launch sizes it.
        var (file, suffix, threads, rows, kvShared, qShared) = BackwardKernels(heads.HeadDim);
        var (table, count) = Table(batch, rows);
        int kvX = heads.KvHeads * heads.Chunks, qX = heads.QueryHeads * heads.Chunks;
        Kernel(file, "attention_backward_fused" + suffix + "_varlen", define).Launch(
            ((kvX + qX) * count, 1, 1), threads, Math.Max(kvShared, qShared),
            dq, dk, dv, q, k, v, dout, lse, delta, table, count, heads.QueryHeads, heads.KvHeads, heads.Scale, heads.Window, kvX, qX);
    }

    /// <summary>The batch's tile table for blocks of <paramref name="rows"/> rows.</summary>
    private static (ulong Table, int Count) Table(VarlenAttentionDevice batch, int rows) =>
        rows == 2 * AttentionTile ? (batch.Tiles128, batch.Count128) : (batch.Tiles64, batch.Count64);
}
