using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// The groups whose LoRA up-projection rides in the base product along K: <c>y = [x | h]·[W | B]ᵀ</c>.
    /// The group's norm writes its output with spare columns (<c>[x | h₁ | h₂ (| h₃) | 0…]</c>, the group's
    /// hidden values written there by one product), and the members' weights are stored with the same
    /// row stride, each member's B (bf16 copy, refreshed after every optimizer step) in its own spare
    /// columns and zeros in the others'. The output (8,192 columns for gate/up at 1B) is then written
    /// once instead of written, read and rewritten by <c>h·Bᵀ</c>, and the separate up-projection
    /// launches disappear. Not with dropout (each member's hidden comes from its own dropped input
    /// while the base product reads x), 4-bit weights or a rank that is not a multiple of 8.
    /// </summary>
    private static readonly Projection[][] SpareColumnGroups = [[Projection.Q, Projection.K, Projection.V], [Projection.Gate, Projection.Up]];

    /// <summary>
    /// The spare columns' row stride is rounded up to this many elements, the zero columns past the
    /// members' B included in every member's product: K stays a multiple of cuBLASLt's 64-wide K tiles
    /// (hidden + r = 2,064 at 1B is not), and every row starts 128-byte aligned.
    /// </summary>
    internal const int SpareStrideMultiple = 64;

    /// <summary>Whether a group's weights carry B in spare columns and its norm's output has the hidden columns, per <see cref="SpareColumnGroups"/>.</summary>
    private readonly bool[] _spareColumns = new bool[2];

    /// <summary>Row stride of the first norm's output and q/k/v's weights (hidden, or hidden + 3r rounded up).</summary>
    private int _norm1Stride;

    /// <summary>Row stride of the second norm's output and gate/up's weights (hidden, or hidden + 2r rounded up).</summary>
    private int _norm2Stride;

    /// <summary>
    /// Whether the spare-column products run over the whole padded stride (K a multiple of
    /// <see cref="SpareStrideMultiple"/>) or only up to the member's own B (K = hidden + (i + 1)·r, the
    /// layout before the padding: the benchmark's A/B, bench/train-cuda <c>:unpadded</c>). Both give the
    /// same values up to fp32 summation order; set between steps only.
    /// </summary>
    public bool PadSpareColumnK { get; set; } = true;

    /// <summary>Restrides q/k/v's and gate/up's weights (before the activations are allocated; the copy's transient stays below the training peak).</summary>
    private void AddSpareColumns(LoraSettings settings, bool fourBit)
    {
        int h = _c.HiddenSize;
        _norm1Stride = _norm2Stride = h;
        if (fourBit || settings.Dropout > 0 || _rank % 8 != 0) return;
        for (var g = 0; g < SpareColumnGroups.Length; g++)
        {
            var group = SpareColumnGroups[g];
            if (!Enumerable.Range(0, _c.NumLayers).All(l => _lora.HasGroup(l, group, h) && group.All(p => _w.Layers[l].Linear[(int)p] is not null))) continue;
            var stride = (h + group.Length * _rank + SpareStrideMultiple - 1) / SpareStrideMultiple * SpareStrideMultiple;
            var pool = _ctx.Device.Memory;
            for (var l = 0; l < _c.NumLayers; l++)
                foreach (var p in group)
                {
                    var weight = _w.Layers[l].Linear[(int)p]!;
                    var outF = p.OutFeatures(_c);
                    var grown = pool.Allocate((long)outF * stride * 2);
                    grown.FillBytes(0);
                    _ctx.Training.CopyColumns(grown.Pointer, stride, weight.Pointer, h, outF, h);
                    weight.Dispose();
                    _w.Layers[l].Linear[(int)p] = grown;
                }
            _spareColumns[g] = true;
            if (g == 0) _norm1Stride = stride;
            else _norm2Stride = stride;
        }
    }

    /// <summary>
    /// Zeros the norms' outputs once: the columns past the group's hidden values are never written, and
    /// the padded products read them (times zero weights; left as allocated they could hold NaN bits).
    /// </summary>
    private void ZeroSpareColumns()
    {
        long n = _capacity, h = _c.HiddenSize;
        foreach (var (x, stride) in _acts.SelectMany(a => new[] { (a.Norm1, _norm1Stride), (a.Norm2, _norm2Stride) }).Distinct())
            if (stride > h) _ctx.Zero(x, n * stride * 2);
    }

    /// <summary>Copies B's bf16 values into the spare weight columns (after loading and after every optimizer step).</summary>
    private void RefreshSpareColumns()
    {
        int h = _c.HiddenSize;
        for (var g = 0; g < SpareColumnGroups.Length; g++)
        {
            if (!_spareColumns[g]) continue;
            var stride = g == 0 ? _norm1Stride : _norm2Stride;
            for (var l = 0; l < _c.NumLayers; l++)
                for (var i = 0; i < SpareColumnGroups[g].Length; i++)
                {
                    var p = SpareColumnGroups[g][i];
                    _ctx.Training.CopyColumns(_w.Layers[l].Linear[(int)p]!.Pointer + (ulong)((h + i * _rank) * 2), stride, _lora.B(l, p), _rank, p.OutFeatures(_c), _rank);
                }
        }
    }

    /// <summary>The group index of <paramref name="p"/> in <see cref="SpareColumnGroups"/> when its spare columns are on, else -1.</summary>
    private int SpareGroup(Projection p)
    {
        var g = p switch { Projection.Q or Projection.K or Projection.V => 0, Projection.Gate or Projection.Up => 1, _ => -1 };
        return g >= 0 && _spareColumns[g] ? g : -1;
    }

    /// <summary>The row stride of <paramref name="p"/>'s stored weight (0: dense).</summary>
    private int WeightStride(Projection p) => SpareGroup(p) switch { 0 => _norm1Stride, 1 => _norm2Stride, _ => 0 };

    /// <summary>
    /// A spare-column group member's forward product with the LoRA term along K: the group's hidden
    /// values land in x's spare columns (the first member computes them all), then
    /// <c>y = [x | h₁ | h₂ …]·[W | B₁ | 0 …]ᵀ</c> over the padded stride (or up to the member's own B).
    /// </summary>
    private void SpareColumnLinear(int l, Projection p, ulong x, ulong y, int n, CudaActivations a)
    {
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c), stride = WeightStride(p);
        var k = inF;
        if (LoraHidden(l, p, x, n, a, stride))
            k = PadSpareColumnK ? stride : inF + (Index(SpareColumnGroups[SpareGroup(p)], p) + 1) * _rank;
        Blas.Gemm(x, false, Weight(l, p), true, y, n, outF, k, lda: stride, ldb: stride);
        if (_w.Layers[l].Bias[(int)p] is { } bias) _ctx.Training.AddBias(y, bias.Pointer, n, outF);
    }
}
