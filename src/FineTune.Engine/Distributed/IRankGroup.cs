namespace FineTune.Engine.Distributed;

/// <summary>
/// The ranks that train one model together, one per GPU (NCCL), or a single one. The trainer asks
/// it only for collectives whose result is the same bits on every rank, so every rank takes the
/// same AdamW step and the same decisions (stop, diverged, resume step).
/// </summary>
public interface IRankGroup : IDisposable
{
    /// <summary>This process's rank, 0-based; rank 0 writes checkpoints and outputs.</summary>
    int Rank { get; }

    /// <summary>Ranks in the group.</summary>
    int Size { get; }

    /// <summary>Every rank's <paramref name="values"/>, concatenated in rank order (<see cref="Size"/> × length).</summary>
    double[] AllGather(ReadOnlySpan<double> values);

    /// <summary>Whether any rank passes true (a stop asked for on one rank stops all at the same step).</summary>
    bool Any(bool mine);

    /// <summary>
    /// Replaces <paramref name="values"/> (host memory) with their sum over the ranks, added in rank order
    /// (<see cref="RankOrder.Sum(ReadOnlySpan{float}, int, Span{float})"/>), so every rank ends with the same bits.
    /// </summary>
    void SumInRankOrder(Span<float> values);
}

/// <summary>Training in one process on one device: every collective is the identity.</summary>
public sealed class SingleRank : IRankGroup
{
    /// <summary>The one instance (it holds nothing).</summary>
    public static readonly SingleRank Instance = new();

    /// <inheritdoc />
    public int Rank => 0;

    /// <inheritdoc />
    public int Size => 1;

    /// <inheritdoc />
    public double[] AllGather(ReadOnlySpan<double> values) => values.ToArray();

    /// <inheritdoc />
    public bool Any(bool mine) => mine;

    /// <inheritdoc />
    public void SumInRankOrder(Span<float> values) { }

    /// <inheritdoc />
    public void Dispose() { }
}

/// <summary>The fixed reduction order every rank group follows.</summary>
public static class RankOrder
{
    /// <summary>
    /// <paramref name="result"/>[i] = ((g₀[i] + g₁[i]) + g₂[i]) + … in float32, where gᵣ is rank r's slice of
    /// <paramref name="gathered"/> (rank-major, <paramref name="ranks"/> slices of result's length). The GPU
    /// kernel adds in the same order, so both give the same bits.
    /// </summary>
    public static void Sum(ReadOnlySpan<float> gathered, int ranks, Span<float> result)
    {
        var n = result.Length;
        if (gathered.Length != (long)n * ranks) throw new ArgumentException("gathered must hold ranks × result.Length values.", nameof(gathered));
        gathered[..n].CopyTo(result);
        for (var r = 1; r < ranks; r++)
        {
            var slice = gathered.Slice(r * n, n);
            for (var i = 0; i < n; i++) result[i] += slice[i];
        }
    }

    /// <summary>The sum of one value per rank (a loss, a count), in rank order, in double.</summary>
    public static double Sum(ReadOnlySpan<double> perRank)
    {
        var s = 0.0;
        foreach (var x in perRank) s += x;
        return s;
    }
}
