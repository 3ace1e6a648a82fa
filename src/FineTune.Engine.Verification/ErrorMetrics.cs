namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>Relative error ‖out − ref‖ / ‖ref‖ in float64; NaN anywhere makes it NaN (never passes).</summary>
public static class ErrorMetrics
{
    /// <summary>Relative L2 error of bf16 outputs against a float64 reference.</summary>
    public static double Relative(ushort[] output, double[] reference) => Relative(Bf16.ToDouble(output), reference);

    /// <summary>Relative L2 error of fp32 outputs against a float64 reference.</summary>
    public static double Relative(float[] output, double[] reference) => Relative(Array.ConvertAll(output, x => (double)x), reference);

    /// <summary>Relative L2 error against a float64 reference.</summary>
    public static double Relative(double[] output, double[] reference)
    {
        if (output.Length != reference.Length)
            throw new ArgumentException($"Output has {output.Length} values, the reference {reference.Length}.");
        double diff = 0, norm = 0;
        for (var i = 0; i < output.Length; i++)
        {
            var d = output[i] - reference[i];
            diff += d * d;
            norm += reference[i] * reference[i];
        }
        return norm == 0 ? (diff == 0 ? 0 : double.PositiveInfinity) : Math.Sqrt(diff / norm);
    }
}
