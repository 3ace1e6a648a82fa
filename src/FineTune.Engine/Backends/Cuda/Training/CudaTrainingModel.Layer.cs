using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// The layer's forward pass into <paramref name="a"/> and _resid[l + 1]. With
    /// <paramref name="recompute"/> (gradient checkpointing, before the layer's backward pass) the
    /// layer output is already known, so down_proj's base product is skipped: the backward pass
    /// needs only its LoRA down-projection, and (<see cref="SkipsRecomputedGlu"/>) the recompute stops
    /// after gate and up, leaving h and that down-projection to the backward pass. Under selective checkpointing
    /// (<see cref="GpuMemoryPlan.KeepsAttention"/>) the layer also kept its attention output, lse
    /// and x1, so the attention kernel and o_proj's base product are skipped too, and with
    /// <see cref="GpuMemoryPlan.KeepsQkv"/> its q, k, v: of the attention half only the first norm and
    /// q/k/v's LoRA hidden values (their dA and dB read them) are redone; o_proj's and down_proj's hidden
    /// values are kept too (<see cref="GpuMemoryPlan.KeepsLoraHiddens"/>). With sandwich
    /// norms (Gemma 3) the backward pass needs o_proj's and down_proj's outputs and their norms'
    /// rstd, so those products are redone (rewriting x1 and _resid[l + 1] with the same bits).
    /// </summary>
    private void LayerForward(int l, CudaActivations a, int n, IReadOnlyList<AttentionSegment> shape, bool recompute = false)
    {
        var w = _w.Layers[l];
        int h = _c.HiddenSize, hd = _c.HeadDim;
        var off = NormOffset;
        var invFreq = InverseFrequencies(l);
        var input = Resid(l);
        // A recomputation's output is already known; with checkpoints offloaded its slot is taken, so it goes to a scratch slot.
        var output = recompute && _offload is not null ? _offload.Recomputed : Resid(l + 1);
        K.RmsNormForward(a.Norm1, a.Rstd1, input, w.InputNorm.Pointer, n, h, Eps, off, yStride: _norm1Stride);
        if (recompute && Plan.KeepsQkv)
            foreach (var p in (ReadOnlySpan<Projection>)[Projection.Q, Projection.K, Projection.V]) LoraHidden(l, p, a.Norm1, n, a, _norm1Stride);
        else
        {
            Linear(l, Projection.Q, a.Norm1, _c.QkNorm ? a.QPre : a.Q, n, a, xStride: _norm1Stride);
            Linear(l, Projection.K, a.Norm1, _c.QkNorm ? a.KPre : a.K, n, a, xStride: _norm1Stride);
            Linear(l, Projection.V, a.Norm1, a.V, n, a, xStride: _norm1Stride);
            if (_c.QkNorm)
            {
                K.RmsNormForward(a.Q, a.QRstd, a.QPre, w.QNorm!.Pointer, n * _c.NumHeads, hd, Eps, off);
                K.RmsNormForward(a.K, a.KRstd, a.KPre, w.KNorm!.Pointer, n * _c.NumKvHeads, hd, Eps, off);
            }
            K.Rope(a.Q, _c.NumHeads, a.K, _c.NumKvHeads, _ws.Positions, invFreq, n, hd, inverse: false);
        }
        var kept = recompute && Plan.KeepsAttention;
        if (!kept) AttentionForward(l, a, shape);
        if (_c.SandwichNorms)
        {
            // x1 = input + norm(o_proj(attention)), the sum in the norm kernel.
            Linear(l, Projection.O, a.Att, a.AttOut, n, a);
            K.RmsNormForward(a.X1, a.AttOutRstd, a.AttOut, w.AttentionOutNorm!.Pointer, n, h, Eps, off, residual: input);
        }
        else if (kept)
        {
            if (!Plan.KeepsLoraHiddens) LoraHidden(l, Projection.O, a.Att, n, a);
        }
        // x1 = input + o_proj(attention): the residual is the product's addend.
        else Linear(l, Projection.O, a.Att, a.X1, n, a, addend: input);
        K.RmsNormForward(a.Norm2, a.Rstd2, a.X1, w.PostNorm.Pointer, n, h, Eps, off, yStride: _norm2Stride);
        int inter = _c.IntermediateSize, gu = GateUpStride;
        if (GateUpAsOne) FusedGateUpLinear(l, a.Norm2, n, a);
        else
        {
            Linear(l, Projection.Gate, a.Norm2, a.Gate, n, a, xStride: _norm2Stride, yStride: gu);
            Linear(l, Projection.Up, a.Norm2, a.Up, n, a, xStride: _norm2Stride, yStride: gu);
        }
        // A recompute that leaves h to the GLU backward kernel needs nothing of the MLP past gate and up.
        if (recompute && GluOutputFromBackward) return;
        GluForward(a, (long)n * inter, gu);
        if (_c.SandwichNorms)
        {
            Linear(l, Projection.Down, a.Act, a.MlpOut, n, a);
            K.RmsNormForward(output, a.MlpOutRstd, a.MlpOut, w.MlpOutNorm!.Pointer, n, h, Eps, off, residual: a.X1);
        }
        else if (recompute)
        {
            if (!Plan.KeepsLoraHiddens) LoraHidden(l, Projection.Down, a.Act, n, a);
        }
        else
            Linear(l, Projection.Down, a.Act, output, n, a, addend: a.X1);
    }

    /// <summary>_ws.DResid holds d(layer output) on entry and d(layer input) on return (rows _dResidStride apart).</summary>
    private void LayerBackward(int l, CudaActivations a, int n, IReadOnlyList<AttentionSegment> shape)
    {
        var w = _w.Layers[l];
        int h = _c.HiddenSize, hd = _c.HeadDim;
        var off = NormOffset;
        var invFreq = InverseFrequencies(l);
        var inter = (long)n * _c.IntermediateSize;
        // With sandwich norms a projection's output gradient first goes back through its norm, into
        // _ws.DNorm: free until the gate/up (and later q/k/v) input gradients overwrite it.
        var dDown = _ws.DResid;
        if (_c.SandwichNorms)
        {
            K.RmsNormBackward(_ws.DNorm, _ws.DResid, a.MlpOut, w.MlpOutNorm!.Pointer, a.MlpOutRstd, n, h, accumulate: false, off);
            dDown = _ws.DNorm;
        }
        int gu = GateUpStride;
        var dDownStride = _c.SandwichNorms ? 0 : _dResidStride;
        // Without its own h (GpuMemoryPlan.SharesGluOutput, a layer kept whole under checkpointing, or a recompute that skipped the GLU forward pass) the layer
        // gets it back from its gate and up in the GLU backward kernel, and down_proj's adapter gradients, the products
        // that read h (dA; after a recompute that did not keep the LoRA hidden value also dB, through it), wait for it.
        var recomputed = Plan.Recomputes(l, _c.NumLayers);
        var refillH = (Plan.SharesGluOutput || GluOutputFromBackward || Plan.GradientCheckpointing && !recomputed) && _lora.Has(l, Projection.Down);
        var hiddenLater = refillH && recomputed && GluOutputFromBackward && !Plan.KeepsLoraHiddens;
        LinearBackward(l, Projection.Down, a.Act, dDown, _ws.DAct, n, a, accumulate: false, dyStride: dDownStride, deferGradA: refillH, deferGradB: hiddenLater);
        // d gate and d up overwrite gate and up, which nothing reads afterwards.
        var hOut = refillH ? a.Act : 0UL;
        if (_c.Activation == GateActivation.GeluTanh) K.GeGluBackward(a.Gate, a.Up, _ws.DAct, a.Gate, a.Up, inter, _c.IntermediateSize, gu, hOut);
        else K.SwiGluBackward(a.Gate, a.Up, _ws.DAct, a.Gate, a.Up, inter, _c.IntermediateSize, gu, hOut);
        if (hiddenLater) DeferredGradB(l, Projection.Down, a.Act, dDown, n, a, dDownStride);
        if (refillH) DeferredGradA(l, Projection.Down, a.Act, dDown, n, dDownStride);
        if (GateUpAsOne) FusedGroupBackward(1, l, a.Norm2, a.Gate, _ws.DNorm, n, a);
        else
        {
            LinearBackward(l, Projection.Gate, a.Norm2, a.Gate, _ws.DNorm, n, a, accumulate: false, dyStride: gu, xStride: _norm2Stride);
            LinearBackward(l, Projection.Up, a.Norm2, a.Up, _ws.DNorm, n, a, accumulate: true, dyStride: gu, xStride: _norm2Stride);
        }
        K.RmsNormBackward(_ws.DResid, _ws.DNorm, a.X1, w.PostNorm.Pointer, a.Rstd2, n, h, accumulate: true, off, _dResidStride);
        var dO = _ws.DResid;
        if (_c.SandwichNorms)
        {
            K.RmsNormBackward(_ws.DNorm, _ws.DResid, a.AttOut, w.AttentionOutNorm!.Pointer, a.AttOutRstd, n, h, accumulate: false, off);
            dO = _ws.DNorm;
        }
        LinearBackward(l, Projection.O, a.Att, dO, _ws.DAtt, n, a, accumulate: false, dyStride: _c.SandwichNorms ? 0 : _dResidStride);
        AttentionBackward(l, a, shape);
        if (QkvGradientAsOne)
        {
            // RoPE's inverse writes [dq | dk | dv | (g)] rows into the dropout scratch (no dropout in this layout), one product's input.
            K.RopePacked(_ws.Scratch, PackedQkvStride, _ws.DQ, _c.NumHeads, _ws.DK, _ws.DV, _c.NumKvHeads, _ws.Positions, invFreq, n, hd, inverse: true);
            FusedGroupBackward(0, l, a.Norm1, _ws.Scratch, _ws.DNorm, n, a);
        }
        else
        {
            K.Rope(_ws.DQ, _c.NumHeads, _ws.DK, _c.NumKvHeads, _ws.Positions, invFreq, n, hd, inverse: true);
            ulong dq = _ws.DQ, dk = _ws.DK;
            if (_c.QkNorm)
            {
                K.RmsNormBackward(_ws.DQPre, _ws.DQ, a.QPre, w.QNorm!.Pointer, a.QRstd, n * _c.NumHeads, hd, accumulate: false, off);
                K.RmsNormBackward(_ws.DKPre, _ws.DK, a.KPre, w.KNorm!.Pointer, a.KRstd, n * _c.NumKvHeads, hd, accumulate: false, off);
                (dq, dk) = (_ws.DQPre, _ws.DKPre);
            }
            LinearBackward(l, Projection.Q, a.Norm1, dq, _ws.DNorm, n, a, accumulate: false, xStride: _norm1Stride);
            LinearBackward(l, Projection.K, a.Norm1, dk, _ws.DNorm, n, a, accumulate: true, xStride: _norm1Stride);
            LinearBackward(l, Projection.V, a.Norm1, _ws.DV, _ws.DNorm, n, a, accumulate: true, xStride: _norm1Stride);
        }
        K.RmsNormBackward(_ws.DResid, _ws.DNorm, Resid(l), w.InputNorm.Pointer, a.Rstd1, n, h, accumulate: true, off, _dResidStride);
    }

    /// <summary>
    /// Whether a checkpointed layer's recompute stops after gate and up (on by default): the GLU backward kernel reads
    /// them anyway and writes h with the forward kernel's bits (as with <see cref="GpuMemoryPlan.SharesGluOutput"/>), so
    /// the recompute skips the GLU forward pass (a read of gate and up and a write of h per layer) and down_proj's LoRA
    /// hidden value, and down_proj's adapter gradients wait for h. Training is unchanged bit for bit. Not with sandwich
    /// norms (Gemma 3): their recompute runs down_proj's product. Off: the benchmark's A/B (bench/train-cuda
    /// <c>:glufwd</c>) and the checks. Set before the first step: a captured step graph keeps the choice it was captured with.
    /// </summary>
    public bool SkipsRecomputedGlu { get; set; } = true;

    /// <summary>Whether this run's recompute leaves h to the GLU backward kernel: checkpointed, <see cref="SkipsRecomputedGlu"/>, no sandwich norms.</summary>
    public bool GluOutputFromBackward => Plan.GradientCheckpointing && SkipsRecomputedGlu && !_c.SandwichNorms;

    /// <summary>h = act(gate) · up over <paramref name="count"/> values, gate and up <paramref name="gu"/> apart per row.</summary>
    private void GluForward(CudaActivations a, long count, int gu)
    {
        if (_c.Activation == GateActivation.GeluTanh) K.GeGluForward(a.Act, a.Gate, a.Up, count, _c.IntermediateSize, gu);
        else K.SwiGluForward(a.Act, a.Gate, a.Up, count, _c.IntermediateSize, gu);
    }

    /// <summary>The layer's rotary frequencies: sliding-window layers have their own (Gemma 3).</summary>
    private ulong InverseFrequencies(int layer) => _c.IsSlidingLayer(layer) ? _invFreqLocal : _invFreq;

    /// <summary>
    /// Each run of equal-length sequences as one attention launch: its shape (with the layer's
    /// window and the model's softmax scale) and the byte offsets of its first row in the
    /// query-wide, key/value-wide and lse ([sequences, heads, length]) buffers.
    /// </summary>
    private IEnumerable<(AttentionShape Shape, ulong Q, ulong Kv, ulong Lse)> Segments(int layer, IReadOnlyList<AttentionSegment> segments)
    {
        var window = _c.IsSlidingLayer(layer) ? _c.SlidingWindow!.Value : 0;
        foreach (var s in segments)
            yield return (new AttentionShape(s.Sequences, s.Length, _c.NumHeads, _c.NumKvHeads, _c.HeadDim) { Window = window, SoftmaxScale = _c.AttentionScale },
                (ulong)s.FirstRow * (ulong)_c.QDim * 2, (ulong)s.FirstRow * (ulong)_c.KvDim * 2, (ulong)s.FirstRow * (ulong)_c.NumHeads * 4);
    }
}
