namespace FineTune.Engine.Backends.Cuda.Blas;

/// <summary>
/// Buckets of the token-row count that share one cuBLASLt algorithm choice. A variable-length SFT
/// run has a new row count at almost every step (any multiple of 16 up to batch x length), and
/// cuBLASLt's heuristic costs about as much per product shape as a small product; planning each
/// bucket once bounds that cost to the first steps that reach it.
/// </summary>
/// <remarks>
/// Eight buckets per doubling (1/8 octave, never finer than 16 rows): a bucket's rows are at most
/// 12.5% fewer than the rows its algorithm was chosen for, close enough that the same tile shape and
/// split suit both. The choice depends on the shape alone (the bucket's upper bound, not the first
/// shape that happened to land in it), so a rerun of the same batches picks the same algorithms and
/// trains the same bytes, whatever ran before in the process.
/// </remarks>
internal static class PlanBuckets
{
    /// <summary>Buckets per doubling of the row count.</summary>
    public const int PerOctave = 8;

    /// <summary>The smallest bucket step: batches' rows are multiples of 16.</summary>
    public const int MinimumStep = 16;

    /// <summary>The bucket's upper bound: the row count whose algorithm <paramref name="rows"/> reuses. Idempotent.</summary>
    public static int UpperBound(int rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        // A step of 2^(floor(log2 rows) - 3) cuts each doubling into 8; rounding up to a multiple of it
        // lands either inside the same doubling (a multiple of the same step) or exactly on the next
        // power of two (a multiple of the next step), so a bound maps to itself.
        var step = Math.Max(MinimumStep, (int)(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)rows + 1) / 2 / PerOctave));
        var bound = ((long)rows + step - 1) / step * step;
        return bound > int.MaxValue ? rows : (int)bound;
    }

    /// <summary>The product the bucket's algorithm is chosen for: <paramref name="shape"/> at its bucket's upper bound of token rows.</summary>
    public static GemmShape Representative(GemmShape shape) => shape.WithTokenRows(UpperBound(shape.TokenRows));
}
