using FineTune.Engine.Weights;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Model;

/// <summary>
/// The base weights a 4-bit (QLoRA) run multiplies with, on the CPU: each projection rounded to bf16
/// (the dtype bitsandbytes quantizes from), quantized by the reference <see cref="FourBitQuantizer"/>,
/// dequantized and rounded to bf16 again (the compute dtype). These are exactly the values the GPU's
/// dequantization kernel writes, so CPU and GPU 4-bit runs start from identical weights. The CPU keeps
/// them as float32 (its graph multiplies float32), so a CPU run saves no memory: it is the reference.
/// </summary>
public static class FourBitLlamaWeights
{
    /// <summary>A copy of <paramref name="weights"/> whose projections went through 4-bit storage; norms, embeddings and the head are shared.</summary>
    public static LlamaWeights Dequantized(LlamaWeights weights, FourBitSettings settings) =>
        weights.WithLinear(values => RoundTrip(values, settings));

    /// <summary>bf16(dequantize(quantize(bf16(values)))).</summary>
    public static float[] RoundTrip(ReadOnlySpan<float> values, FourBitSettings settings)
    {
        var result = new float[values.Length];
        for (var i = 0; i < result.Length; i++) result[i] = Bf16(values[i]);
        var quantized = FourBitQuantizer.Quantize(result, settings.Type, FourBitSettings.BlockSize, settings.DoubleQuant);
        FourBitQuantizer.Dequantize(quantized, result);
        for (var i = 0; i < result.Length; i++) result[i] = Bf16(result[i]);
        return result;
    }

    private static float Bf16(float x) => BitConverter.Int32BitsToSingle(TensorDTypes.ToBFloat16(x) << 16);
}
