namespace FineTune.Engine.Backends.Cuda.Kernels;

/// <summary>
/// Rotary inverse frequencies as Hugging Face computes them (in fp32), the input of
/// <see cref="CudaKernels.Rope"/>.
/// </summary>
public static class RopeFrequencies
{
    /// <summary>inv_freq[i] = 1 / theta^(2i / headDim), i &lt; headDim/2.</summary>
    public static float[] Default(int headDim, double theta)
    {
        var result = new float[headDim / 2];
        for (var i = 0; i < result.Length; i++)
            result[i] = 1f / MathF.Pow((float)theta, 2f * i / headDim);
        return result;
    }

    /// <summary>
    /// Llama 3's scaling (rope_type "llama3"): wavelengths longer than
    /// originalContext/lowFreqFactor are divided by <paramref name="factor"/>, shorter than
    /// originalContext/highFreqFactor are kept, and those between are interpolated smoothly.
    /// </summary>
    public static float[] Llama3(int headDim, double theta, float factor, float lowFreqFactor, float highFreqFactor, int originalContext)
    {
        var result = Default(headDim, theta);
        var lowFreqWavelen = originalContext / lowFreqFactor;
        var highFreqWavelen = originalContext / highFreqFactor;
        for (var i = 0; i < result.Length; i++)
        {
            var f = result[i];
            var wavelen = 2f * MathF.PI / f;
            if (wavelen > lowFreqWavelen)
                result[i] = f / factor;
            else if (wavelen >= highFreqWavelen)
            {
                var smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                result[i] = (1 - smooth) * f / factor + smooth * f;
            }
        }
        return result;
    }
}
