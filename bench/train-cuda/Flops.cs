using FineTune.Engine.Model;

/// <summary>
/// Model FLOPs of one LoRA training step, the numerator of MFU. The base weights are frozen, so the
/// backward pass computes input gradients only: 2 FLOPs per weight per token forward and 2 backward
/// (4N, not the 6N of full training), N = the seven projections of every layer plus the LM head.
/// Causal attention: 2·B·T²·Hq·D per layer forward (QKᵀ and PV over the lower triangle), 2.5x that
/// backward (flash-attention's count). LoRA: 2·r·(in+out) per projection per token forward, twice
/// that backward (dx through A and B, and dA, dB), i.e. 6·r·(in+out). Recomputation under gradient
/// checkpointing is not counted (MFU counts the model's work, not the hardware's).
/// </summary>
internal static class Flops
{
    /// <summary>H100 SXM dense bf16 tensor-core peak, FLOP/s.</summary>
    public const double H100Peak = 989.4e12;

    public static double PerStep(ModelConfig c, int rank, int batch, int seq)
    {
        double tokens = (double)batch * seq;
        double n = (double)c.VocabSize * c.HiddenSize, lora = 0;
        foreach (var p in Projections.All)
        {
            n += (double)p.InFeatures(c) * p.OutFeatures(c) * c.NumLayers;
            lora += 6.0 * rank * (p.InFeatures(c) + p.OutFeatures(c)) * c.NumLayers;
        }
        var attention = 2.0 * batch * (double)seq * seq * c.NumHeads * c.HeadDim * c.NumLayers * 3.5;
        return 4 * n * tokens + lora * tokens + attention;
    }
}
