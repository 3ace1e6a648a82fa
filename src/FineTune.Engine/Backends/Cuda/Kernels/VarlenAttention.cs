namespace FineTune.Engine.Backends.Cuda.Kernels;

/// <summary>
/// The layout of a variable-length batch for one attention launch over all of its sequences: sequence
/// i is rows [Starts[i], Starts[i + 1]) of the q/k/v/out buffers, its lse and delta [heads, length] at
/// Starts[i] * heads (the layout of per-run launches). Lengths are multiples of 16. The device copy
/// (<see cref="Upload"/>) holds the tile tables of the 64- and 128-row kernels, then the starts.
/// </summary>
/// <remarks>
/// Each table entry (start, length, tile, 0) is one block row of a uniform launch over that sequence
/// alone, numbered as the uniform kernels number their tiles; entries are ordered by work (the number
/// of 64- or 128-row tiles the block walks), the most first, so the long causal rows start first and
/// the many short examples of a realistic SFT batch fill the tail.
/// </remarks>
public sealed class VarlenAttention
{
    private VarlenAttention(int[] starts, int[] tiles64, int[] tiles128)
    {
        Starts = starts;
        Tiles64 = tiles64;
        Tiles128 = tiles128;
    }

    /// <summary>Sequence starts, then the row count (Sequences + 1 entries).</summary>
    public int[] Starts { get; }
    /// <summary>Tile table of the 64-row kernels, 4 ints an entry.</summary>
    public int[] Tiles64 { get; }
    /// <summary>Tile table of the 128-row kernels, 4 ints an entry.</summary>
    public int[] Tiles128 { get; }

    /// <summary>Sequences in the batch.</summary>
    public int Sequences => Starts.Length - 1;
    /// <summary>Rows of all sequences.</summary>
    public int Rows => Starts[^1];
    /// <summary>The longest sequence.</summary>
    public int Longest => Enumerable.Range(0, Sequences).Max(i => Starts[i + 1] - Starts[i]);

    /// <summary>The layout of sequences of <paramref name="lengths"/> rows (multiples of 16) laid end to end.</summary>
    public static VarlenAttention For(IReadOnlyList<int> lengths)
    {
        if (lengths.Count == 0) throw new ArgumentException("A variable-length batch needs at least one sequence.", nameof(lengths));
        var starts = new int[lengths.Count + 1];
        for (var i = 0; i < lengths.Count; i++)
        {
            if (lengths[i] <= 0 || lengths[i] % 16 != 0)
                throw new ArgumentException($"Sequence length {lengths[i]} must be a positive multiple of 16.", nameof(lengths));
            starts[i + 1] = starts[i] + lengths[i];
        }
        return new VarlenAttention(starts, Table(starts, 64), Table(starts, 128));
    }

    private static int[] Table(int[] starts, int rows)
    {
        var entries = new List<(int Start, int Length, int Tile, int Work)>();
        for (var s = 0; s + 1 < starts.Length; s++)
        {
            var length = starts[s + 1] - starts[s];
            var tiles = (length + rows - 1) / rows;
            for (var by = 0; by < tiles; by++) entries.Add((starts[s], length, by, tiles - by));
        }
        // OrderByDescending is stable: equal work keeps sequence order.
        return entries.OrderByDescending(e => e.Work).SelectMany(e => new[] { e.Start, e.Length, e.Tile, 0 }).ToArray();
    }

    /// <summary>Entries of the table for tiles of <paramref name="rows"/> rows.</summary>
    public int Count(int rows) => (rows == 64 ? Tiles64 : Tiles128).Length / 4;

    /// <summary>Device bytes the layout of a batch of at most <paramref name="rows"/> rows can need (each sequence at least 16 rows).</summary>
    public static long BytesFor(long rows) => 16 * (rows / 64 + rows / 16 + 2) + 16 * (rows / 128 + rows / 16 + 2) + 4 * (rows / 16 + 2);

    /// <summary>Copies the tables and starts to <paramref name="device"/> (at least <see cref="BytesFor"/> bytes) through <paramref name="upload"/>; returns the device layout.</summary>
    public VarlenAttentionDevice Upload(ulong device, Action<ulong, int[]> upload)
    {
        var t128 = device + (ulong)Tiles64.Length * 4;
        var starts = t128 + (ulong)Tiles128.Length * 4;
        upload(device, [.. Tiles64, .. Tiles128, .. Starts]);
        return new VarlenAttentionDevice(device, Count(64), t128, Count(128), starts, Sequences, Rows);
    }
}

/// <summary>A <see cref="VarlenAttention"/> on the device: the two tile tables and the starts.</summary>
public readonly record struct VarlenAttentionDevice(ulong Tiles64, int Count64, ulong Tiles128, int Count128, ulong Starts, int Sequences, int Rows);
