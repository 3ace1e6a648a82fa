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
        if (UsesHopperForward(heads.HeadDim))
        {
            var (hTable, hCount) = HopperWarpgroups == 2 ? (batch.Tiles128, batch.Count128) : (batch.Tiles64, batch.Count64);
            Kernel("attention_hopper.cu", "attention_forward_hopper" + HopperSuffix + "_varlen", $"HEAD_DIM={heads.HeadDim}").Launch(
                (heads.QueryHeads, hCount, 1), HopperThreads, HopperForwardSharedBytes,
                output, lse, q, k, v, hTable, heads.QueryHeads, heads.KvHeads, heads.Scale, heads.Window);
            return;
        }
        var wide = ForwardTiling != AttentionForwardTiling.Rows64;
        var (table, count) = wide ? (batch.Tiles128, batch.Count128) : (batch.Tiles64, batch.Count64);
        Kernel("attention.cu", wide ? "attention_forward_wide_varlen" : "attention_forward_varlen", $"HEAD_DIM={heads.HeadDim}").Launch(
            (heads.QueryHeads * heads.Chunks, count, 1), AttentionThreads, AttentionSharedBytes(heads.HeadDim, wide ? 6 : 5, 0),
            output, lse, q, k, v, table, heads.QueryHeads, heads.KvHeads, heads.Scale, heads.Window);
    }

    /// <summary><see cref="AttentionBackward"/> (all stages, the fused launch) over a variable-length batch; <paramref name="delta"/> is scratch of rows x heads floats.</summary>
    public void AttentionBackwardVarlen(ulong dq, ulong dk, ulong dv, ulong q, ulong k, ulong v, ulong output, ulong dout, ulong lse, ulong delta,
        AttentionShape heads, VarlenAttentionDevice batch)
    {
        heads.Validate();
        if (UsesHopperBackward(heads.HeadDim))
        {
            Kernel("attention.cu", "attention_backward_delta_varlen", $"HEAD_DIM={heads.HeadDim}").Launch(
                ((int)(((long)batch.Rows * heads.QueryHeads * (heads.HeadDim / 8) + Threads - 1) / Threads), 1, 1), Threads, 0,
                delta, dout, output, batch.Starts, batch.Sequences, batch.Rows, heads.QueryHeads);
            var (hTable, hCount) = HopperWarpgroups == 2 ? (batch.Tiles128, batch.Count128) : (batch.Tiles64, batch.Count64);
            Kernel("attention_hopper.cu", "attention_backward_fused_hopper" + HopperSuffix + "_varlen", $"HEAD_DIM={heads.HeadDim}").Launch(
                ((heads.KvHeads + heads.QueryHeads) * hCount, 1, 1), HopperThreads, HopperBackwardSharedBytes,
                dq, dk, dv, q, k, v, dout, lse, delta, hTable, hCount, heads.QueryHeads, heads.KvHeads, heads.Scale, heads.Window, heads.KvHeads, heads.QueryHeads);
            return;
        }
        var wide = BackwardTiling switch
        {
            AttentionBackwardTiling.Rows128 when heads.HeadDim > 64 => throw new ArgumentException("128-row backward tiles need head_dim <= 64."),
            AttentionBackwardTiling.Rows128 => true,
            AttentionBackwardTiling.Rows64 => false,
            _ => heads.HeadDim <= 64,
        };
        var define = $"HEAD_DIM={heads.HeadDim}";
        var deltaThreads = (long)batch.Rows * heads.QueryHeads * (heads.HeadDim / 8);
        Kernel("attention.cu", "attention_backward_delta_varlen", define).Launch(((int)((deltaThreads + Threads - 1) / Threads), 1, 1), Threads, 0,
            delta, dout, output, batch.Starts, batch.Sequences, batch.Rows, heads.QueryHeads);
        // Shared memory as the uniform fused launch sizes it.
        var kvShared = AttentionSharedBytes(heads.HeadDim, wide ? 8 : heads.HeadDim <= 64 ? 4 : 6, 4 * AttentionTile);
        var qShared = AttentionSharedBytes(heads.HeadDim, wide ? 8 : heads.HeadDim <= 128 ? 4 : 6, 0);
        var (table, count) = wide ? (batch.Tiles128, batch.Count128) : (batch.Tiles64, batch.Count64);
        int kvX = heads.KvHeads * heads.Chunks, qX = heads.QueryHeads * heads.Chunks;
        Kernel("attention.cu", wide ? "attention_backward_fused_wide_varlen" : "attention_backward_fused_varlen", define).Launch(
            ((kvX + qX) * count, 1, 1), AttentionThreads, Math.Max(kvShared, qShared),
            dq, dk, dv, q, k, v, dout, lse, delta, table, count, heads.QueryHeads, heads.KvHeads, heads.Scale, heads.Window, kvX, qX);
    }
}
