using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// gate/up's LoRA up-projection rides in the base product along K: <c>y = [x | h]·[W | B]ᵀ</c>. The
    /// second norm writes its output with r spare columns per member (<c>[x | h_gate | h_up]</c>, the
    /// group's hidden values written there), and the gate and up weights are stored with the same row
    /// stride, B's bf16 copy in their spare columns (refreshed after every optimizer step) and zeros in
    /// the other member's: gate's product runs over K = hidden + r, up's over hidden + 2r. The output
    /// (8,192 columns at 1B) is then written once instead of written, read and rewritten by
    /// <c>h·Bᵀ</c>. Not with dropout (each member's hidden comes from its own dropped input while the
    /// base product reads x), 4-bit weights or a rank that is not a multiple of 8.
    /// </summary>
    private static readonly Projection[] SpareColumnProjections = [Projection.Gate, Projection.Up];

    /// <summary>Whether gate/up's weights carry B in spare columns and the second norm's output has the hidden columns.</summary>
    private bool _spareColumns;

    /// <summary>Row stride of the second norm's output and of gate/up's weights: hidden, or hidden + 2r.</summary>
    private int _norm2Stride;

    /// <summary>Restrides gate/up's weights (before the activations are allocated; the copy's transient stays below the training peak).</summary>
    private void AddSpareColumns(LoraSettings settings, bool fourBit)
    {
        int h = _c.HiddenSize, inter = _c.IntermediateSize;
        _norm2Stride = h;
        if (fourBit || settings.Dropout > 0 || _rank % 8 != 0) return;
        for (var l = 0; l < _c.NumLayers; l++)
            if (!_lora.HasGroup(l, SpareColumnProjections, h) || SpareColumnProjections.Any(p => _w.Layers[l].Linear[(int)p] is null)) return;
        _norm2Stride = h + SpareColumnProjections.Length * _rank;
        var pool = _ctx.Device.Memory;
        for (var l = 0; l < _c.NumLayers; l++)
            foreach (var p in SpareColumnProjections)
            {
                var weight = _w.Layers[l].Linear[(int)p]!;
                var grown = pool.Allocate((long)inter * _norm2Stride * 2);
                grown.FillBytes(0);
                _ctx.Training.CopyColumns(grown.Pointer, _norm2Stride, weight.Pointer, h, inter, h);
                weight.Dispose();
                _w.Layers[l].Linear[(int)p] = grown;
            }
        _spareColumns = true;
    }

    /// <summary>Copies B's bf16 values into gate/up's spare weight columns (after loading and after every optimizer step).</summary>
    private void RefreshSpareColumns()
    {
        if (!_spareColumns) return;
        int h = _c.HiddenSize;
        for (var l = 0; l < _c.NumLayers; l++)
            for (var i = 0; i < SpareColumnProjections.Length; i++)
            {
                var p = SpareColumnProjections[i];
                _ctx.Training.CopyColumns(_w.Layers[l].Linear[(int)p]!.Pointer + (ulong)((h + i * _rank) * 2), _norm2Stride, _lora.B(l, p), _rank, _c.IntermediateSize, _rank);
            }
    }

    /// <summary>The row stride of <paramref name="p"/>'s stored weight (0: dense).</summary>
    private int WeightStride(Projection p) => _spareColumns && p is Projection.Gate or Projection.Up ? _norm2Stride : 0;

    /// <summary>
    /// gate/up's forward product with the LoRA term along K: the group's hidden values land in x's
    /// spare columns (the first member computes both), then <c>y = [x | h_gate (| h_up)]·[W | B_gate (| 0 | B_up)]ᵀ</c>.
    /// </summary>
    private void SpareColumnLinear(int l, Projection p, ulong x, ulong y, int n, CudaActivations a)
    {
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
        var k = inF;
        if (LoraHidden(l, p, x, n, a, _norm2Stride))
            k = inF + (Index(SpareColumnProjections, p) + 1) * _rank;
        Blas.Gemm(x, false, Weight(l, p), true, y, n, outF, k, lda: _norm2Stride, ldb: _norm2Stride);
        if (_w.Layers[l].Bias[(int)p] is { } bias) _ctx.Training.AddBias(y, bias.Pointer, n, outF);
    }
}
