namespace FineTune.Engine.Weights.FourBit;

/// <summary>
/// bitsandbytes' signed 8-bit dynamic data type (<c>create_dynamic_map(signed=True)</c>), the code
/// book of double quantization: for each decade 10^-6..10^0, the midpoints of 2^i + 1 evenly spaced
/// points in [0.1, 1] scaled to that decade, both signs, plus 0 and 1, sorted (256 values).
/// </summary>
public static class DynamicMap
{
    /// <summary>The 256 values, ascending.</summary>
    public static IReadOnlyList<float> Signed { get; } = Create();

    private static float[] Create()
    {
        var data = new List<float>(256);
        for (var i = 0; i < 7; i++)
        {
            var boundaries = Linspace(0.1f, 1f, (1 << i) + 1);
            var scale = (float)Math.Pow(10, i - 6);
            for (var k = 0; k + 1 < boundaries.Length; k++)
            {
                var mean = (boundaries[k] + boundaries[k + 1]) / 2f;
                data.Add(scale * mean);
                data.Add(-scale * mean);
            }
        }
        data.Add(0f);
        data.Add(1f);
        data.Sort();
        return data.ToArray();
    }

    /// <summary>
    /// torch.linspace in float32 as its CPU kernel computes it: the step in float32, the first half
    /// counted up from the start and the second half down from the end (so both ends are exact), each
    /// point one fused multiply-add (the kernel is compiled with FMA contraction; separate rounding of
    /// the product moves 21 of the 254 map values by an ulp).
    /// </summary>
    internal static float[] Linspace(float start, float end, int steps)
    {
        if (steps == 1) return [start];
        var step = (end - start) / (steps - 1);
        var halfway = steps / 2;
        var result = new float[steps];
        for (var i = 0; i < steps; i++) result[i] = i < halfway ? MathF.FusedMultiplyAdd(step, i, start) : MathF.FusedMultiplyAdd(-step, steps - i - 1, end);
        return result;
    }
}
