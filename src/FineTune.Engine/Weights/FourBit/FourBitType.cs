namespace FineTune.Engine.Weights.FourBit;

/// <summary>The 4-bit data types of QLoRA (bitsandbytes' <c>bnb_4bit_quant_type</c>).</summary>
public enum FourBitType
{
    /// <summary>NormalFloat4: 16 quantiles of N(0, 1) scaled to [-1, 1] (QLoRA's default).</summary>
    Nf4,

    /// <summary>A 4-bit float (1 sign, 2 exponent, 1 mantissa bit) scaled to [-1, 1].</summary>
    Fp4,
}

/// <summary>The 16-entry code books: a 4-bit code is an index into them, not a float encoding.</summary>
public static class FourBitCodeBook
{
    // bitsandbytes get_4bit_type("nf4"): create_normal_map(offset=0.9677083) rounded to float32.
    private static readonly float[] Nf4Values =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
        0.7229568362236023f, 1.0f,
    ];

    // get_4bit_type("fp4") in bit-pattern order (sign bit 8), divided by its largest magnitude.
    private static readonly float[] Fp4Raw = [0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f, -0f, -0.0625f, -8f, -12f, -4f, -6f, -2f, -3f];

    private static readonly float[] Fp4Values = Fp4Raw.Select(v => v / 12f).ToArray();

    /// <summary>Value of each 4-bit code, indexed by the code.</summary>
    public static ReadOnlySpan<float> Values(FourBitType type) => type == FourBitType.Nf4 ? Nf4Values : Fp4Values;

    /// <summary>
    /// The codes in ascending order of value (stable: +0 before −0 in FP4) and the float32 midpoints
    /// between neighbours, which decide the code of a scaled value: the number of midpoints below it.
    /// </summary>
    public static (byte[] Order, float[] Bounds) Buckets(FourBitType type) => type == FourBitType.Nf4 ? Nf4Buckets.Value : Fp4Buckets.Value;

    private static readonly Lazy<(byte[], float[])> Nf4Buckets = new(() => MakeBuckets(Nf4Values));
    private static readonly Lazy<(byte[], float[])> Fp4Buckets = new(() => MakeBuckets(Fp4Values));

    internal static (byte[] Order, float[] Bounds) MakeBuckets(float[] values)
    {
        var order = Enumerable.Range(0, values.Length).OrderBy(i => values[i]).Select(i => (byte)i).ToArray();
        var bounds = new float[values.Length - 1];
        for (var i = 0; i < bounds.Length; i++) bounds[i] = (values[order[i]] + values[order[i + 1]]) / 2f;
        return (order, bounds);
    }
}
