using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// Whether q/k/v's input gradient runs as one product when their weights share a buffer (on by default): RoPE's
    /// inverse writes <c>[dq | dk | dv]</c> rows (<see cref="CudaKernels.RopePacked"/>) into the dropout scratch, which this
    /// layout (no dropout) leaves free, and <see cref="FusedGroupBackward"/> runs on them as on gate/up's rows. Not with q/k
    /// norms (their backward pass runs between RoPE's and the products). Off: three products as before (the benchmark's
    /// A/B, bench/train-cuda <c>:threeqkv</c>; the same values up to fp32 summation order). Set before the first step: a
    /// captured step graph keeps the choice it was captured with.
    /// </summary>
    public bool PacksQkvGradient { get; set; } = true;

    /// <summary>Whether this run's q/k/v input gradient is one product (<see cref="PacksQkvGradient"/> in this layout).</summary>
    public bool QkvGradientAsOne => PacksQkvGradient && FuseLoraProducts && _spareColumns[0] && !_c.QkNorm;

    /// <summary>
    /// Whether q/k/v's LoRA input gradient rides in their packed base product along K (on by default): <c>g·A</c> is part of
    /// <c>dx = [dq | dk | dv | g]·[W_q; W_k; W_v; A]</c>, g written into the packed rows' last columns, instead of
    /// <c>dx += g·A</c> after it (one more read and write of dx). Off: the benchmark's A/B (bench/train-cuda <c>:qkvga</c>).
    /// Gate/up keep <c>dx += g·A</c>: their rows would need the g columns in every layer's activations (measured, not
    /// adopted: bench/train-cuda's README). Set before the first step.
    /// </summary>
    public bool StacksQkvA { get; set; } = true;

    /// <summary>
    /// Rows of the group's A (bf16 copy, refreshed after every optimizer step with the B copies) stored after its members'
    /// weights for <see cref="FusedGroupBackward"/>: q/k/v's 3r where their input gradient can run as one product (no q/k
    /// norms); none for gate/up.
    /// </summary>
    internal static int StackedARows(ModelConfig c, IReadOnlyList<Projection> group, int rank) =>
        group[0] == Projection.Q && !c.QkNorm ? group.Count * rank : 0;

    /// <summary>The members' output columns side by side: q + 2 · kv, or 2 · intermediate.</summary>
    private int GroupWidth(IReadOnlyList<Projection> group) => group.Sum(p => p.OutFeatures(_c));

    /// <summary>The packed q/k/v gradient rows' stride: [dq | dk | dv | g_q | g_k | g_v].</summary>
    private int PackedQkvStride => GroupWidth(SpareColumnGroups[0]) + 3 * _rank;

    /// <summary>
    /// A spare-column group's backward products as one (<paramref name="dy"/>: the packed [dq | dk | dv | g columns] rows, or
    /// the [dgate | dup] rows): the members' LoRA g from the weights' spare columns in one product (into the packed rows' g
    /// columns, else the g buffer), each member's dB, the group's dA, then <c>dx = [dY | g]·[W₁; W₂; W₃; A]</c> with A
    /// stacked (<see cref="StacksQkvA"/>), else <c>dx = dY·[W₁; W₂]</c> and <c>dx += g·A</c> (q/k/v's three products each
    /// way were 11, now 6).
    /// </summary>
    private void FusedGroupBackward(int groupIndex, int l, ulong x, ulong dy, ulong dx, int n, CudaActivations a)
    {
        var group = SpareColumnGroups[groupIndex];
        int h = _c.HiddenSize, stride = WeightStride(group[0]), k = GroupWidth(group), width = group.Length * _rank;
        var packed = groupIndex == 0;
        var ld = packed ? PackedQkvStride : GateUpStride;
        var (g, gld) = packed ? (dy + (ulong)(k * 2), ld) : (_ws.LoraG, width);
        var weight = Weight(l, group[0]);
        Blas.Gemm(dy, false, weight + (ulong)(h * 2), false, g, n, width, k, alpha: _scale, lda: ld, ldb: stride, ldc: gld);
        var column = 0;
        foreach (var p in group)
        {
            GradB(l, p, dy + (ulong)(column * 2), n, a, ld);
            column += p.OutFeatures(_c);
        }
        Blas.Gemm(g, true, x, false, _lora.GradA(l, group[0]), width, h, n, float32Output: true, beta: 1f, lda: gld, ldb: stride);
        if (packed && StacksQkvA && StackedARows(_c, group, _rank) > 0)
        {
            Blas.Gemm(dy, false, weight, false, dx, n, h, k + width, lda: ld, ldb: stride);
            return;
        }
        Blas.Gemm(dy, false, weight, false, dx, n, h, k, lda: ld, ldb: stride);
        Blas.Gemm(g, false, _lora.A(l, group[0]), false, dx, n, h, width, beta: 1f, lda: gld);
    }
}
