using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// The projections whose output gradient is the residual stream's (o_proj, down_proj without
    /// sandwich norms): their LoRA input gradient rides in the base product along its K dimension,
    /// <c>dx = [dY | g]·[W; A]</c>. The weight buffer gets r more rows holding A's bf16 copy (refreshed
    /// after every optimizer step) and the residual gradient r spare columns where g is written, so dx is
    /// written once instead of written by the base product and read and rewritten by <c>g·A</c>.
    /// Not with dropout (dx gets drop'(g·A), its own mask), 4-bit weights (the dequantized buffer has no
    /// spare rows) or a rank that is not a multiple of 8 (the norm kernel's 16-byte rows).
    /// </summary>
    private static readonly Projection[] ResidualOutputs = [Projection.O, Projection.Down];

    /// <summary>[layer, projection]: the weight buffer holds A after W.</summary>
    private bool[,] _stackedA = new bool[0, 0];

    /// <summary>Row stride of _ws.DResid: hidden, or hidden + r with stacked A (g in the spare columns).</summary>
    private int _dResidStride;

    /// <summary>Grows each fused projection's weight buffer by r rows (before the activations are allocated, so the copy's transient stays below the training peak).</summary>
    private void StackA(LoraSettings settings, bool fourBit)
    {
        _stackedA = new bool[_c.NumLayers, Projections.All.Length];
        _dResidStride = _c.HiddenSize;
        if (fourBit || _c.SandwichNorms || settings.Dropout > 0 || _rank % 8 != 0) return;
        var pool = _ctx.Device.Memory;
        for (var l = 0; l < _c.NumLayers; l++)
            foreach (var p in ResidualOutputs)
            {
                if (!_lora.Has(l, p) || _w.Layers[l].Linear[(int)p] is not { } weight) continue;
                long inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
                var grown = pool.Allocate((outF + _rank) * inF * 2);
                grown.CopyFrom(weight, outF * inF * 2);
                weight.Dispose();
                _w.Layers[l].Linear[(int)p] = grown;
                _stackedA[l, (int)p] = true;
                _dResidStride = _c.HiddenSize + _rank;
            }
    }

    /// <summary>Refreshes the bf16 adapter values kept inside weight buffers (stacked A, B in spare columns).</summary>
    private void RefreshAdapterCopies()
    {
        RefreshStackedA();
        RefreshSpareColumns();
    }

    /// <summary>Copies A's bf16 values into the rows after W (after loading and after every optimizer step).</summary>
    private void RefreshStackedA()
    {
        for (var l = 0; l < _stackedA.GetLength(0); l++)
            foreach (var p in ResidualOutputs)
            {
                if (!_stackedA[l, (int)p]) continue;
                long inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
                _ctx.Copy(_w.Layers[l].Linear[(int)p]!.Pointer + (ulong)(outF * inF * 2), _lora.A(l, p), _rank * inF * 2);
            }
    }

    /// <summary>
    /// o/down's backward pass with A stacked under W: g = scale · dY·B into dY's spare columns,
    /// dB += dYᵀ·hidden, dA += gᵀ·x, then dx (+)= [dY | g]·[W; A] in one product. With
    /// <paramref name="deferGradA"/> dA is left for <see cref="StackedGradA"/> (x is written after dx: down_proj's
    /// input when the layer did not keep it); g stays in dY's spare columns until then. With <paramref name="deferGradB"/>
    /// dB is left for <see cref="DeferredGradB"/> (after a recompute that left h to the GLU backward kernel).
    /// </summary>
    private void StackedLinearBackward(int l, Projection p, ulong x, ulong dy, ulong dx, int n, CudaActivations a, bool accumulate, bool deferGradA = false, bool deferGradB = false)
    {
        int outF = p.OutFeatures(_c), ld = _dResidStride;
        var g = dy + (ulong)(outF * 2);
        Blas.Gemm(dy, false, _lora.B(l, p), false, g, n, _rank, outF, alpha: _scale, lda: ld, ldc: ld);
        if (!deferGradB) GradB(l, p, dy, n, a, ld);
        if (!deferGradA) StackedGradA(l, p, dy, x, n);
        Blas.Gemm(dy, false, _w.Layers[l].Linear[(int)p]!.Pointer, false, dx, n, p.InFeatures(_c), outF + _rank, beta: accumulate ? 1f : 0f, lda: ld);
    }

    /// <summary>dA += gᵀ·x, g in <paramref name="dy"/>'s spare columns (<see cref="StackedLinearBackward"/>).</summary>
    private void StackedGradA(int l, Projection p, ulong dy, ulong x, int n)
    {
        var g = dy + (ulong)(p.OutFeatures(_c) * 2);
        Blas.Gemm(g, true, x, false, _lora.GradA(l, p), _rank, p.InFeatures(_c), n, float32Output: true, beta: 1f, lda: _dResidStride);
    }
}
