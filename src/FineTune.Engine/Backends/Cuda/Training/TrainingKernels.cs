using FineTune.Engine.Backends.Cuda.Compilation;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>Launchers for <c>training.cu</c>: bias addition, LoRA-input dropout, constant fills, strided copies, the gradient sum over ranks.</summary>
internal sealed class TrainingKernels(CudaDevice device, KernelCompiler compiler) : IDisposable
{
    private const int Threads = 256;
    private CudaModule? _module;

    private CudaKernel Kernel(string entry) => (_module ??= compiler.Load("training.cu")).Kernel(entry);

    private int Grid(long work) => (int)Math.Clamp((work + Threads - 1) / Threads, 1, (long)device.MultiprocessorCount * 16);

    /// <summary>y[rows, cols] += bias[cols]; cols a multiple of 8.</summary>
    public void AddBias(ulong y, ulong bias, long rows, int cols) =>
        Kernel("add_bias").Launch((Grid(rows * cols / 8), 1, 1), Threads, 0, y, bias, KernelArg.Int64(rows), cols);

    /// <summary>dst = dropout(src) over <paramref name="count"/> values with the mask of <see cref="DropoutMask"/>.</summary>
    public void Dropout(ulong dst, ulong src, long count, DropoutMask mask) =>
        Kernel("dropout_apply").Launch((Grid(count), 1, 1), Threads, 0, dst, src, KernelArg.Int64(count), mask.Key, mask.Threshold, mask.KeepScale);

    /// <summary>dx += dropout(t): the gradient through the same mask.</summary>
    public void DropoutAdd(ulong dx, ulong t, long count, DropoutMask mask) =>
        Kernel("dropout_add").Launch((Grid(count), 1, 1), Threads, 0, dx, t, KernelArg.Int64(count), mask.Key, mask.Threshold, mask.KeepScale);

    /// <summary>dst[rows[i]] = src[i] for <paramref name="count"/> rows of <paramref name="dim"/> bf16 values (int32 row indices).</summary>
    public void ScatterRows(ulong dst, ulong src, ulong rows, int count, int dim) =>
        Kernel("scatter_rows").Launch((count, 1, 1), Threads, 0, dst, src, rows, dim);

    /// <summary>
    /// Copies <paramref name="rows"/> × <paramref name="cols"/> bf16 values between row-major matrices whose rows are
    /// <paramref name="dstStride"/> and <paramref name="srcStride"/> elements apart; dst's other columns are left alone.
    /// </summary>
    public void CopyColumns(ulong dst, long dstStride, ulong src, long srcStride, long rows, int cols) =>
        Kernel("copy_columns_bf16").Launch((Grid(rows * cols), 1, 1), Threads, 0, dst, KernelArg.Int64(dstStride), src, KernelArg.Int64(srcStride), KernelArg.Int64(rows), cols);

    /// <summary>
    /// <see cref="CopyColumns(ulong, long, ulong, long, long, int)"/> for every copy of a table in one launch: <paramref name="table"/> holds
    /// <paramref name="count"/> entries of <see cref="ColumnCopyTable.Entry"/>; <paramref name="maxValues"/> is the largest rows × cols.
    /// </summary>
    public void CopyColumns(ulong table, int count, long maxValues) =>
        Kernel("copy_columns_bf16_table").Launch((Grid(maxValues), count, 1), Threads, 0, table);

    /// <summary>Sets <paramref name="count"/> bf16 values to <paramref name="value"/>.</summary>
    public void Fill(ulong dst, long count, float value) =>
        Kernel("fill_bf16").Launch((Grid(count), 1, 1), Threads, 0, dst, KernelArg.Int64(count), value);

    /// <summary>
    /// dst[i] = ((src[i] + src[n + i]) + src[2n + i]) + … over <paramref name="ranks"/> slices of <paramref name="count"/>
    /// float32 values: the gradient sum in rank order, as <see cref="Engine.Distributed.RankOrder.Sum(System.ReadOnlySpan{float}, int, System.Span{float})"/>.
    /// </summary>
    public void SumRankSlices(ulong dst, ulong src, long count, int ranks) =>
        Kernel("sum_rank_slices").Launch((Grid(count), 1, 1), Threads, 0, dst, src, KernelArg.Int64(count), ranks);

    public void Dispose() => _module?.Dispose();
}

/// <summary>
/// The inverted-dropout mask of one projection's LoRA input, as the CPU graph draws it: element i is
/// dropped when <c>(Mix(Key + i) &gt;&gt; 11) · 2⁻⁵³ &lt; rate</c>, i.e. <c>(Mix(Key + i) &gt;&gt; 11) &lt; ⌈rate · 2⁵³⌉</c>.
/// </summary>
internal readonly record struct DropoutMask(ulong Key, ulong Threshold, float KeepScale)
{
    public static DropoutMask For(ulong dropoutKey, int layer, Model.Projection p, double rate) => new(
        DeterministicRandom.Mix(dropoutKey ^ ((ulong)layer << 40) ^ ((ulong)p << 56)),
        (ulong)Math.Ceiling(rate * (1UL << 53)),
        (float)(1 / (1 - rate)));
}
