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
    internal static readonly Projection[][] SpareColumnGroups = [[Projection.Q, Projection.K, Projection.V], [Projection.Gate, Projection.Up]];

    /// <summary>
    /// The spare columns' row stride is rounded up to this many elements, the zero columns past the
    /// members' B included in every member's product: K stays a multiple of cuBLASLt's 64-wide K tiles
    /// (hidden + r = 2,064 at 1B is not), and every row starts 128-byte aligned. On an H200 this made
    /// no difference the benchmark could show at 1B or 8B (bench/train-cuda's README, <c>:unpadded</c>);
    /// it costs 2% more FLOPs in those products at 1B and 0.02 GiB.
    /// </summary>
    internal const int SpareStrideMultiple = 64;

    /// <summary>The row stride of a group's norm output and weights: hidden + members · r, rounded up to <see cref="SpareStrideMultiple"/>.</summary>
    internal static int SpareStride(int hidden, int members, int rank) => (hidden + members * rank + SpareStrideMultiple - 1) / SpareStrideMultiple * SpareStrideMultiple;

    /// <summary>Whether a group's weights carry B in spare columns and its norm's output has the hidden columns, per <see cref="SpareColumnGroups"/>.</summary>
    private readonly bool[] _spareColumns = new bool[2];

    /// <summary>Byte offset of each projection's rows in its group's shared weight buffer (0 outside the spare-column groups).</summary>
    private readonly long[] _spareRowOffset = new long[Projections.All.Length];

    /// <summary>Every layer's B copies into the spare columns, one launch (<see cref="RefreshSpareColumns"/>); built at the first refresh, in the constructor.</summary>
    private ColumnCopyTable? _spareCopies;

    /// <summary>Row stride (elements) of gate's and up's outputs: the intermediate size, or twice it when one buffer holds [gate | up] rows.</summary>
    private int GateUpStride => _spareColumns[1] ? 2 * _c.IntermediateSize : _c.IntermediateSize;

    /// <summary>
    /// Whether gate and up run as one product each way when their weights share a buffer (on by default): forward
    /// <c>[gate | up] = [x | h_gate | h_up]·[W_gate | B_gate | 0; W_up | 0 | B_up]ᵀ</c> (N = 2 · intermediate), backward
    /// <c>dx = [dgate | dup]·[W_gate; W_up]</c> (K = 2 · intermediate) and both members' LoRA g from the same
    /// weights' spare columns, <c>[g_gate | g_up] = s·[dgate | dup]·[B_gate 0; 0 B_up]</c>. Off: one product per
    /// member over the same layout (the benchmark's A/B, bench/train-cuda <c>:twoproducts</c>). Set between steps only.
    /// </summary>
    public bool FuseGateUp { get; set; } = true;

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
            var stride = SpareStride(h, group.Length, _rank);
            var pool = _ctx.Device.Memory;
            // The members' rows back to back in one buffer (each member's slot holds it; disposing twice is a no-op),
            // so gate/up's product can run as one (FusedGateUpLinear).
            long rows = 0;
            foreach (var p in group)
            {
                _spareRowOffset[(int)p] = rows * stride * 2;
                rows += p.OutFeatures(_c);
            }
            rows += StackedARows(_c, group, _rank);
            for (var l = 0; l < _c.NumLayers; l++)
            {
                var grown = pool.Allocate(rows * stride * 2);
                grown.FillBytes(0);
                foreach (var p in group)
                {
                    var weight = _w.Layers[l].Linear[(int)p]!;
                    _ctx.Training.CopyColumns(grown.Pointer + (ulong)_spareRowOffset[(int)p], stride, weight.Pointer, h, p.OutFeatures(_c), h);
                    weight.Dispose();
                    _w.Layers[l].Linear[(int)p] = grown;
                }
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
    private void RefreshSpareColumns() => (_spareCopies ??= SpareCopyTable()).Run(_ctx.Training);

    /// <summary>
    /// The copies of every layer's B of each group with spare columns (rank columns at h + i · rank of member i's rows) and
    /// of the group's A into the rows after their weights (<see cref="StackedARows"/>).
    /// </summary>
    private ColumnCopyTable SpareCopyTable()
    {
        int h = _c.HiddenSize;
        var copies = new List<ColumnCopyTable.Entry>();
        for (var g = 0; g < SpareColumnGroups.Length; g++)
        {
            if (!_spareColumns[g]) continue;
            var stride = g == 0 ? _norm1Stride : _norm2Stride;
            for (var l = 0; l < _c.NumLayers; l++)
                for (var i = 0; i < SpareColumnGroups[g].Length; i++)
                {
                    var p = SpareColumnGroups[g][i];
                    copies.Add(new(Weight(l, p) + (ulong)((h + i * _rank) * 2), stride, _lora.B(l, p), _rank, p.OutFeatures(_c), _rank));
                }
            var group = SpareColumnGroups[g];
            for (var l = 0; l < _c.NumLayers; l++)
                if (StackedARows(_c, group, _rank) is var aRows and > 0)
                    copies.Add(new(Weight(l, group[0]) + (ulong)(GroupWidth(group) * (long)stride * 2), stride, _lora.A(l, group[0]), h, aRows, h));
        }
        return new ColumnCopyTable(_ctx.Device.Memory, copies);
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
    private void SpareColumnLinear(int l, Projection p, ulong x, ulong y, int n, CudaActivations a, int yStride)
    {
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c), stride = WeightStride(p);
        var k = inF;
        if (LoraHidden(l, p, x, n, a, stride))
            k = PadSpareColumnK ? stride : inF + (Index(SpareColumnGroups[SpareGroup(p)], p) + 1) * _rank;
        Blas.Gemm(x, false, Weight(l, p), true, y, n, outF, k, lda: stride, ldb: stride, ldc: yStride);
        if (_w.Layers[l].Bias[(int)p] is { } bias) _ctx.Training.AddBias(y, bias.Pointer, n, outF);
    }

    /// <summary>Whether gate/up run as one product (<see cref="FuseGateUp"/>) in this layout.</summary>
    private bool GateUpAsOne => FuseGateUp && FuseLoraProducts && _spareColumns[1];

    /// <summary>Gate's and up's forward products as one: <c>a.Gate</c> gets [gate | up] rows (see <see cref="FuseGateUp"/>).</summary>
    private void FusedGateUpLinear(int l, ulong x, int n, CudaActivations a)
    {
        int h = _c.HiddenSize, stride = _norm2Stride;
        var k = LoraHidden(l, Projection.Gate, x, n, a, stride) ? PadSpareColumnK ? stride : h + 2 * _rank : h;
        Blas.Gemm(x, false, Weight(l, Projection.Gate), true, a.Gate, n, GateUpStride, k, lda: stride, ldb: stride);
    }
}
