using FineTune.Core.Config;

namespace FineTune.Engine.Weights.FourBit;

/// <summary>
/// How a QLoRA run holds its base projections (lora.yaml's <c>load_in_4bit</c> keys): bitsandbytes'
/// 4-bit format in blocks of <see cref="BlockSize"/>, dequantized to bf16 for every product.
/// </summary>
/// <param name="Type">NF4 or FP4 (<c>bnb_4bit_quant_type</c>).</param>
/// <param name="DoubleQuant">Whether the absmax values are quantized too (<c>bnb_4bit_use_double_quant</c>).</param>
public sealed record FourBitSettings(FourBitType Type, bool DoubleQuant)
{
    /// <summary>Values per absmax block: bitsandbytes' default, which transformers' BitsAndBytesConfig does not expose.</summary>
    public const int BlockSize = 64;

    /// <summary>The settings of <paramref name="config"/>, or null when it trains over bf16 weights.</summary>
    public static FourBitSettings? From(TrainingConfig config) => config.LoadIn4Bit
        ? new FourBitSettings(config.Bnb4BitQuantType == "fp4" ? FourBitType.Fp4 : FourBitType.Nf4, config.Bnb4BitUseDoubleQuant)
        : null;

    /// <summary>For logs, train-summary.json and the manifest, e.g. <c>4-bit nf4, double quantization, bf16 compute</c>.</summary>
    public override string ToString() =>
        $"4-bit {(Type == FourBitType.Nf4 ? "nf4" : "fp4")}, {(DoubleQuant ? "double quantization" : "float32 absmax")}, bf16 compute";

    /// <summary>Bytes one projection of <paramref name="count"/> values takes: codes, and absmax (8-bit codes + float32 per 256, or float32).</summary>
    public long Bytes(long count)
    {
        var blocks = (count + BlockSize - 1) / BlockSize;
        var absmax = DoubleQuant ? blocks + 4 * ((blocks + DoubleQuantized.BlockSize - 1) / DoubleQuantized.BlockSize) : 4 * blocks;
        return (count + 1) / 2 + absmax;
    }
}
