namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>Host-side bf16 (the upper 16 bits of an IEEE float), rounded to nearest even like the kernels.</summary>
public static class Bf16
{
    /// <summary>The bf16 bits nearest to <paramref name="value"/>.</summary>
    public static ushort FromSingle(float value)
    {
        var u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            return (ushort)((u >> 16) | 0x40u);
        u += 0x7fffu + ((u >> 16) & 1u);
        return (ushort)(u >> 16);
    }

    /// <summary>The float a bf16 value denotes (exact).</summary>
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Random bf16 values, uniform in [-scale, scale) before rounding.</summary>
    public static ushort[] Random(Random rng, long count, float scale = 1f)
    {
        var result = new ushort[count];
        for (long i = 0; i < count; i++)
            result[i] = FromSingle((float)(rng.NextDouble() * 2 - 1) * scale);
        return result;
    }

    /// <summary>The values as doubles, for the float64 references.</summary>
    public static double[] ToDouble(ushort[] bits)
    {
        var result = new double[bits.Length];
        for (var i = 0; i < bits.Length; i++)
            result[i] = ToSingle(bits[i]);
        return result;
    }
}
