using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// The layer's forward pass into <paramref name="a"/> and _resid[l + 1]. With
    /// <paramref name="recompute"/> (gradient checkpointing, before the layer's backward pass) the
    /// layer keeps its attention output, lse and x1 from the forward pass, so attention and
    /// o_proj's products are skipped (only o_proj's LoRA down-projection is redone), and the layer
    /// output is already known, so down_proj's base product is skipped too.
    /// </summary>
    private void LayerForward(int l, CudaActivations a, int n, IReadOnlyList<AttentionSegment> shape, bool recompute = false)
    {
        var w = _w.Layers[l];
        int h = _c.HiddenSize, hd = _c.HeadDim;
        K.RmsNormForward(a.Norm1, a.Rstd1, _resid[l], w.InputNorm.Pointer, n, h, Eps);
        Linear(l, Projection.Q, a.Norm1, _c.QkNorm ? a.QPre : a.Q, n, a);
        Linear(l, Projection.K, a.Norm1, _c.QkNorm ? a.KPre : a.K, n, a);
        Linear(l, Projection.V, a.Norm1, a.V, n, a);
        if (_c.QkNorm)
        {
            K.RmsNormForward(a.Q, a.QRstd, a.QPre, w.QNorm!.Pointer, n * _c.NumHeads, hd, Eps);
            K.RmsNormForward(a.K, a.KRstd, a.KPre, w.KNorm!.Pointer, n * _c.NumKvHeads, hd, Eps);
        }
        K.Rope(a.Q, _ws.Positions, _invFreq, n, _c.NumHeads, hd, inverse: false);
        K.Rope(a.K, _ws.Positions, _invFreq, n, _c.NumKvHeads, hd, inverse: false);
        if (recompute)
        {
            LoraHidden(l, Projection.O, a.Att, n, a);
        }
        else
        {
            foreach (var (seg, qOff, kvOff, lseOff) in Segments(shape))
                K.AttentionForward(a.Att + qOff, a.Lse + lseOff, a.Q + qOff, a.K + kvOff, a.V + kvOff, seg);
            // x1 = input + o_proj(attention): the residual is the product's addend.
            Linear(l, Projection.O, a.Att, a.X1, n, a, addend: _resid[l]);
        }
        K.RmsNormForward(a.Norm2, a.Rstd2, a.X1, w.PostNorm.Pointer, n, h, Eps);
        Linear(l, Projection.Gate, a.Norm2, a.Gate, n, a);
        Linear(l, Projection.Up, a.Norm2, a.Up, n, a);
        K.SwiGluForward(a.Act, a.Gate, a.Up, (long)n * _c.IntermediateSize);
        if (recompute)
            LoraHidden(l, Projection.Down, a.Act, n, a);
        else
            Linear(l, Projection.Down, a.Act, _resid[l + 1], n, a, addend: a.X1);
    }

    /// <summary>_ws.DResid holds d(layer output) on entry and d(layer input) on return.</summary>
    private void LayerBackward(int l, CudaActivations a, int n, IReadOnlyList<AttentionSegment> shape)
    {
        var w = _w.Layers[l];
        int h = _c.HiddenSize, hd = _c.HeadDim;
        var inter = (long)n * _c.IntermediateSize;
        LinearBackward(l, Projection.Down, a.Act, _ws.DResid, _ws.DAct, n, a, accumulate: false);
        // d gate and d up overwrite gate and up, which nothing reads afterwards.
        K.SwiGluBackward(a.Gate, a.Up, _ws.DAct, a.Gate, a.Up, inter);
        LinearBackward(l, Projection.Gate, a.Norm2, a.Gate, _ws.DNorm, n, a, accumulate: false);
        LinearBackward(l, Projection.Up, a.Norm2, a.Up, _ws.DNorm, n, a, accumulate: true);
        K.RmsNormBackward(_ws.DResid, _ws.DNorm, a.X1, w.PostNorm.Pointer, a.Rstd2, n, h, accumulate: true);
        LinearBackward(l, Projection.O, a.Att, _ws.DResid, _ws.DAtt, n, a, accumulate: false);
        foreach (var (seg, qOff, kvOff, lseOff) in Segments(shape))
            K.AttentionBackward(_ws.DQ + qOff, _ws.DK + kvOff, _ws.DV + kvOff, a.Q + qOff, a.K + kvOff, a.V + kvOff, a.Att + qOff, _ws.DAtt + qOff,
                a.Lse + lseOff, _ws.Delta + lseOff, seg);
        K.Rope(_ws.DQ, _ws.Positions, _invFreq, n, _c.NumHeads, hd, inverse: true);
        K.Rope(_ws.DK, _ws.Positions, _invFreq, n, _c.NumKvHeads, hd, inverse: true);
        ulong dq = _ws.DQ, dk = _ws.DK;
        if (_c.QkNorm)
        {
            K.RmsNormBackward(_ws.DQPre, _ws.DQ, a.QPre, w.QNorm!.Pointer, a.QRstd, n * _c.NumHeads, hd, accumulate: false);
            K.RmsNormBackward(_ws.DKPre, _ws.DK, a.KPre, w.KNorm!.Pointer, a.KRstd, n * _c.NumKvHeads, hd, accumulate: false);
            (dq, dk) = (_ws.DQPre, _ws.DKPre);
        }
        LinearBackward(l, Projection.Q, a.Norm1, dq, _ws.DNorm, n, a, accumulate: false);
        LinearBackward(l, Projection.K, a.Norm1, dk, _ws.DNorm, n, a, accumulate: true);
        LinearBackward(l, Projection.V, a.Norm1, _ws.DV, _ws.DNorm, n, a, accumulate: true);
        K.RmsNormBackward(_ws.DResid, _ws.DNorm, _resid[l], w.InputNorm.Pointer, a.Rstd1, n, h, accumulate: true);
    }

    /// <summary>
    /// Each run of equal-length sequences as one attention launch: its shape and the byte offsets
    /// of its first row in the query-wide, key/value-wide and lse ([sequences, heads, length]) buffers.
    /// </summary>
    private IEnumerable<(AttentionShape Shape, ulong Q, ulong Kv, ulong Lse)> Segments(IReadOnlyList<AttentionSegment> segments)
    {
        foreach (var s in segments)
            yield return (new AttentionShape(s.Sequences, s.Length, _c.NumHeads, _c.NumKvHeads, _c.HeadDim),
                (ulong)s.FirstRow * (ulong)_c.QDim * 2, (ulong)s.FirstRow * (ulong)_c.KvDim * 2, (ulong)s.FirstRow * (ulong)_c.NumHeads * 4);
    }
}
