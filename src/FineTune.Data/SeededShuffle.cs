namespace FineTune.Data;

/// <summary>
/// Deterministic shuffling from a seed (SplitMix64 + Fisher-Yates). Written out rather than using
/// System.Random so the same seed gives the same split and merges on every .NET version.
/// </summary>
public static class SeededShuffle
{
    /// <summary>A permutation of <c>0..count-1</c> determined by <paramref name="seed"/>.</summary>
    public static int[] Permutation(int count, long seed)
    {
        var order = Enumerable.Range(0, count).ToArray();
        var state = unchecked((ulong)seed);
        for (var i = count - 1; i > 0; i--)
        {
            var j = (int)(Next(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    private static ulong Next(ref ulong state)
    {
        unchecked
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
