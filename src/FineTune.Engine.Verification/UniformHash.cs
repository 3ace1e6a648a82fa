namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// The host twin of the <c>fill_uniform</c> kernels: element i of stream <c>seed</c> is
/// SplitMix64's finaliser of <c>i·φ + seed</c>, its top 24 bits scaled to [-scale, scale).
/// </summary>
public static class UniformHash
{
    /// <summary>The fp32 value of element <paramref name="index"/>.</summary>
    public static float Value(ulong index, ulong seed, float scale)
    {
        unchecked
        {
            var z = index * 0x9E3779B97F4A7C15ul + seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ul;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBul;
            z ^= z >> 31;
            var u = (float)(z >> 40) * (1.0f / 16777216.0f);
            return (u * 2f - 1f) * scale;
        }
    }
}
