using FineTune.Engine.Backends.Cuda.Kernels;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    private ulong _varlenTables;
    private VarlenAttentionDevice? _varlen;

    /// <summary>
    /// Whether a batch of several runs of equal-length sequences runs attention as one launch over all
    /// of them (<see cref="VarlenAttention"/>, the default) rather than one launch per run: a realistic
    /// SFT batch is mostly runs of one short example, each of which alone fills few multiprocessors.
    /// The values are the same bit for bit; the benchmark turns it off for the A/B.
    /// </summary>
    public bool SingleAttentionLaunch { get; set; } = true;

    /// <summary>Uploads the batch's sequence layout for the single launch, when it has more than one run.</summary>
    private void PrepareAttention(IReadOnlyList<AttentionSegment> segments)
    {
        _varlen = null;
        if (!SingleAttentionLaunch || segments.Count < 2) return;
        var layout = VarlenAttention.For([.. segments.SelectMany(s => Enumerable.Repeat(s.Length, s.Sequences))]);
        // A launch's grid rows are at most 65,535 (batches of thousands of 16-token examples): per run then.
        if (layout.Count(64) > ushort.MaxValue) return;
        _varlen = layout.Upload(_varlenTables, (p, data) => _ctx.Upload<int>(p, data));
    }

    private void AttentionForward(int layer, CudaActivations a, IReadOnlyList<AttentionSegment> shape)
    {
        if (_varlen is { } v)
        {
            K.AttentionForwardVarlen(a.Att, a.Lse, a.Q, a.K, a.V, Heads(layer, v), v);
            return;
        }
        foreach (var (seg, qOff, kvOff, lseOff) in Segments(layer, shape))
            K.AttentionForward(a.Att + qOff, a.Lse + lseOff, a.Q + qOff, a.K + kvOff, a.V + kvOff, seg);
    }

    private void AttentionBackward(int layer, CudaActivations a, IReadOnlyList<AttentionSegment> shape)
    {
        if (_varlen is { } v)
        {
            K.AttentionBackwardVarlen(_ws.DQ, _ws.DK, _ws.DV, a.Q, a.K, a.V, a.Att, _ws.DAtt, a.Lse, _ws.Delta, Heads(layer, v), v);
            return;
        }
        foreach (var (seg, qOff, kvOff, lseOff) in Segments(layer, shape))
            K.AttentionBackward(_ws.DQ + qOff, _ws.DK + kvOff, _ws.DV + kvOff, a.Q + qOff, a.K + kvOff, a.V + kvOff, a.Att + qOff, _ws.DAtt + qOff,
                a.Lse + lseOff, _ws.Delta + lseOff, seg);
    }

    /// <summary>The layer's heads, window and scale for the single launch (batch and length only validated).</summary>
    private AttentionShape Heads(int layer, VarlenAttentionDevice v) =>
        new(v.Sequences, v.Rows, _c.NumHeads, _c.NumKvHeads, _c.HeadDim) { Window = _c.IsSlidingLayer(layer) ? _c.SlidingWindow!.Value : 0, SoftmaxScale = _c.AttentionScale };
}
