using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>y = x Wᵀ (+ addend) + bias + scale · (drop(x) Aᵀ) Bᵀ; the LoRA term accumulates into y (beta = 1).</summary>
    /// <remarks><paramref name="xStride"/>: x's row stride when it has spare columns for LoRA hidden values (0: dense).</remarks>
    /// <remarks><paramref name="yStride"/>: y's row stride when it is one member's columns of [gate | up] rows (0: dense).</remarks>
    private void Linear(int l, Projection p, ulong x, ulong y, int n, CudaActivations a, ulong addend = 0, int xStride = 0, int yStride = 0)
    {
        if (FuseLoraProducts && addend == 0 && WeightStride(p) != 0 && xStride == WeightStride(p))
        {
            SpareColumnLinear(l, p, x, y, n, a, yStride);
            return;
        }
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
        var lw = _w.Layers[l];
        Blas.Gemm(x, false, Weight(l, p), true, y, n, outF, inF, beta: addend != 0 ? 1f : 0f, addend: addend, lda: xStride, ldb: WeightStride(p), ldc: yStride);
        if (lw.Bias[(int)p] is { } bias) _ctx.Training.AddBias(y, bias.Pointer, n, outF);
        if (!LoraHidden(l, p, x, n, a, xStride)) return;
        Blas.Gemm(a.LoraHidden[(int)p], false, _lora.B(l, p), true, y, n, outF, _rank, beta: 1f, lda: a.LoraHiddenStride[(int)p], ldc: yStride);
    }

    /// <summary>
    /// a.LoraHidden[p] = scale · drop(x) Aᵀ; false where the projection has no adapter. In a
    /// <see cref="Grouped"/> group the first member computes every member's columns in one product
    /// (the layer runs q before k and v, gate before up, all on the same x).
    /// </summary>
    private bool LoraHidden(int l, Projection p, ulong x, int n, CudaActivations a, int xStride = 0)
    {
        if (!_adapterEnabled || !_lora.Has(l, p)) return false;
        var inF = p.InFeatures(_c);
        var group = LoraGroups.Of(p);
        if (Grouped(l, group))
        {
            if (p == group[0])
                Blas.Gemm(x, false, _lora.A(l, p), true, a.LoraHidden[(int)p], n, group.Count * _rank, inF, alpha: _scale, lda: xStride, ldc: a.LoraHiddenStride[(int)p]);
            return true;
        }
        Blas.Gemm(Dropped(l, p, x, n, inF, xStride), false, _lora.A(l, p), true, a.LoraHidden[(int)p], n, _rank, inF, alpha: _scale, lda: xStride, ldc: a.LoraHiddenStride[(int)p]);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="group"/>'s LoRA products run as one (<see cref="LoraGroups"/>): every member
    /// has an adapter, their A matrices are contiguous, and no dropout gives each member its own input.
    /// </summary>
    private bool Grouped(int l, IReadOnlyList<Projection> group) =>
        FuseLoraProducts && group.Count > 1 && Mask(l, group[0]) is null && _lora.HasGroup(l, group, group[0].InFeatures(_c));

    /// <summary>
    /// Whether the fused LoRA products run: q/k/v's and gate/up's as one product per group
    /// (<see cref="LoraGroups"/>), o/down's input gradient inside the base product (<see cref="StackedLinearBackward"/>).
    /// On by default; off, each projection runs its own products as before (the benchmark's A/B,
    /// bench/train-cuda <c>:unfused</c>). Set between steps only: a group's products are split between its members' calls.
    /// </summary>
    public bool FuseLoraProducts { get; set; } = true;

    /// <summary>dx (+)= dy W + the LoRA path's input gradient; accumulates the adapter's fp32 gradients (beta = 1).</summary>
    /// <remarks><paramref name="dyStride"/>: dy's row stride when it is the residual gradient with spare columns (0: dense).</remarks>
    /// <remarks><paramref name="xStride"/>: x's row stride when it has spare columns (0: dense).</remarks>
    /// <remarks>
    /// <paramref name="deferGradA"/>: dA is left for <see cref="DeferredGradA"/>, for an x written only after dx (down_proj's
    /// input when the layer did not keep it, <see cref="GpuMemoryPlan.SharesGluOutput"/>); a projection outside a group only.
    /// <paramref name="deferGradB"/>: dB too, for <see cref="DeferredGradB"/> (the LoRA hidden value, from that x, is not yet computed).
    /// </remarks>
    private void LinearBackward(int l, Projection p, ulong x, ulong dy, ulong dx, int n, CudaActivations a, bool accumulate, int dyStride = 0, int xStride = 0, bool deferGradA = false, bool deferGradB = false)
    {
        if (StacksA(l, p, dyStride))
        {
            StackedLinearBackward(l, p, x, dy, dx, n, a, accumulate, deferGradA, deferGradB);
            return;
        }
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
        Blas.Gemm(dy, false, Weight(l, p), false, dx, n, inF, outF, beta: accumulate ? 1f : 0f, lda: dyStride, ldb: WeightStride(p));
        if (!_lora.Has(l, p)) return;
        // g = scale · dy B [n × r]; dB += dyᵀ (scale · drop(x) Aᵀ); dA += gᵀ drop(x); dx += drop'(g A).
        var group = LoraGroups.Of(p);
        var grouped = Grouped(l, group);
        var width = grouped ? group.Count * _rank : _rank;
        var g = _ws.LoraG + (grouped ? (ulong)(Index(group, p) * _rank * 2) : 0);
        Blas.Gemm(dy, false, _lora.B(l, p), false, g, n, _rank, outF, alpha: _scale, lda: dyStride, ldc: width);
        if (!deferGradB) GradB(l, p, dy, n, a, dyStride);
        if (grouped)
        {
            if (deferGradA || deferGradB) throw new InvalidOperationException($"{p}'s adapter gradients are products with its group's and cannot wait.");
            // The group's last member (the layer's backward pass runs q, k, v and gate, up in order):
            // every member's g is in place, so the A gradients and the input gradient take one product each.
            if (p != group[^1]) return;
            Blas.Gemm(_ws.LoraG, true, x, false, _lora.GradA(l, group[0]), width, inF, n, float32Output: true, beta: 1f, ldb: xStride);
            Blas.Gemm(_ws.LoraG, false, _lora.A(l, group[0]), false, dx, n, inF, width, beta: 1f);
            return;
        }
        if (!deferGradA) Blas.Gemm(g, true, Dropped(l, p, x, n, inF, xStride), false, _lora.GradA(l, p), _rank, inF, n, float32Output: true, beta: 1f, ldb: xStride);
        if (Mask(l, p) is not { } mask)
        {
            Blas.Gemm(g, false, _lora.A(l, p), false, dx, n, inF, _rank, beta: 1f);
            return;
        }
        Blas.Gemm(g, false, _lora.A(l, p), false, _ws.Scratch, n, inF, _rank);
        _ctx.Training.DropoutAdd(dx, _ws.Scratch, (long)n * inF, mask);
    }

    /// <summary>
    /// dA += gᵀ·drop(x) of a <see cref="LinearBackward"/> called with deferGradA, before anything else writes its g
    /// (dY's spare columns when stacked, else the LoRA g buffer) or the dropout scratch.
    /// </summary>
    private void DeferredGradA(int l, Projection p, ulong x, ulong dy, int n, int dyStride = 0)
    {
        if (StacksA(l, p, dyStride))
        {
            StackedGradA(l, p, dy, x, n);
            return;
        }
        if (Grouped(l, LoraGroups.Of(p))) throw new InvalidOperationException($"{p}'s A gradient is one product with its group's.");
        var inF = p.InFeatures(_c);
        Blas.Gemm(_ws.LoraG, true, Dropped(l, p, x, n, inF), false, _lora.GradA(l, p), _rank, inF, n, float32Output: true, beta: 1f);
    }

    /// <summary>
    /// The LoRA hidden value from <paramref name="x"/>, then dB += dyᵀ·hidden, for a <see cref="LinearBackward"/> called with
    /// deferGradB once x is written (before <see cref="DeferredGradA"/>: with dropout both redraw drop(x) into the scratch buffer).
    /// </summary>
    private void DeferredGradB(int l, Projection p, ulong x, ulong dy, int n, CudaActivations a, int dyStride)
    {
        if (Grouped(l, LoraGroups.Of(p))) throw new InvalidOperationException($"{p}'s LoRA hidden value is one product with its group's.");
        LoraHidden(l, p, x, n, a);
        GradB(l, p, dy, n, a, dyStride);
    }

    /// <summary>dB += dyᵀ·(scale · drop(x) Aᵀ), the LoRA hidden value the forward pass (or <see cref="DeferredGradB"/>) left.</summary>
    private void GradB(int l, Projection p, ulong dy, int n, CudaActivations a, int dyStride) =>
        Blas.Gemm(dy, true, a.LoraHidden[(int)p], false, _lora.GradB(l, p), p.OutFeatures(_c), _rank, n, float32Output: true, beta: 1f, lda: dyStride, ldb: a.LoraHiddenStride[(int)p]);

    /// <summary>Whether <see cref="LinearBackward"/> of <paramref name="p"/> runs as <see cref="StackedLinearBackward"/>.</summary>
    private bool StacksA(int l, Projection p, int dyStride) => FuseLoraProducts && _stackedA[l, (int)p] && dyStride == _dResidStride;

    /// <summary>
    /// The projection's bf16 weight: its own buffer, or (load_in_4bit) the 4-bit codes dequantized into
    /// the one reused buffer just before the product that reads it. This beat the fused kernel
    /// (FourBitKernels.GemmSkinny) at every shape measured, 8 to 4096 rows (bench/train-cuda/results/h200-2026-12-02-qlora2.jsonl). Every launch is on one stream, so the
    /// next dequantization cannot overwrite the buffer before this product has read it.
    /// </summary>
    private ulong Weight(int l, Projection p)
    {
        var lw = _w.Layers[l];
        if (lw.Linear[(int)p] is { } bf16) return bf16.Pointer + (ulong)_spareRowOffset[(int)p];
        _ctx.FourBit.Dequantize(lw.FourBit[(int)p]!, _dequantized);
        return _dequantized;
    }

    private static int Index(IReadOnlyList<Projection> group, Projection p)
    {
        for (var i = 0; i < group.Count; i++)
            if (group[i] == p) return i;
        throw new ArgumentException($"{p} is not in its group.", nameof(p));
    }

    private DropoutMask? Mask(int l, Projection p) =>
        DropoutKey is { } key && _lora.Settings.Dropout > 0 ? DropoutMask.For(key, l, p, _lora.Settings.Dropout) : null;

    /// <summary>x itself, or its dropped copy in the scratch buffer.</summary>
    private ulong Dropped(int l, Projection p, ulong x, int n, int inF, int xStride = 0)
    {
        if (Mask(l, p) is not { } mask) return x;
        // Strided inputs exist only without dropout (AddSpareColumns).
        if (xStride != 0 && xStride != inF) throw new InvalidOperationException("Dropout of a strided projection input.");
        _ctx.Training.Dropout(_ws.Scratch, x, (long)n * inF, mask);
        return _ws.Scratch;
    }
}
