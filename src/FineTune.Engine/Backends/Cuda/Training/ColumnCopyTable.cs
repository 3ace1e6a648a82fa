using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// A device table of strided bf16 copies (training.cu's <c>ColumnCopy</c>) that
/// <see cref="TrainingKernels.CopyColumns(ulong, int, long)"/> runs in one launch. Built once: the
/// buffers it names must outlive it and keep their addresses (a captured step graph replays it).
/// </summary>
internal sealed class ColumnCopyTable : IDisposable
{
    private readonly DeviceBuffer? _table;

    /// <summary>One copy: rows × cols values from src (rows srcStride apart) to dst (rows dstStride apart), in elements.</summary>
    public readonly record struct Entry(ulong Dst, long DstStride, ulong Src, long SrcStride, long Rows, long Cols);

    public ColumnCopyTable(CudaMemoryPool pool, IReadOnlyList<Entry> entries)
    {
        Count = entries.Count;
        if (Count == 0) return;
        // ColumnCopy's layout: six 8-byte fields.
        var words = new long[Count * 6];
        for (var i = 0; i < Count; i++)
        {
            var e = entries[i];
            if (e.Rows <= 0 || e.Cols <= 0 || e.DstStride < e.Cols || e.SrcStride < e.Cols)
                throw new ArgumentException($"Copy {i} ({e.Rows} x {e.Cols}, strides {e.DstStride} and {e.SrcStride}) is not a block of columns.", nameof(entries));
            (words[i * 6], words[i * 6 + 1], words[i * 6 + 2], words[i * 6 + 3], words[i * 6 + 4], words[i * 6 + 5]) =
                ((long)e.Dst, e.DstStride, (long)e.Src, e.SrcStride, e.Rows, e.Cols);
            MaxValues = Math.Max(MaxValues, e.Rows * e.Cols);
        }
        _table = pool.Allocate(words.Length * 8L);
        _table.Upload<long>(words);
    }

    public int Count { get; }

    public long MaxValues { get; }

    /// <summary>Runs every copy (nothing when the table is empty).</summary>
    public void Run(TrainingKernels kernels)
    {
        if (_table is not null) kernels.CopyColumns(_table.Pointer, Count, MaxValues);
    }

    public void Dispose() => _table?.Dispose();
}
