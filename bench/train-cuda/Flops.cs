using FineTune.Engine.Model;

/// <summary>
/// Model FLOPs of one LoRA training step, the numerator of MFU. The base weights are frozen, so the
/// backward pass computes input gradients only: 2 FLOPs per weight per token forward and 2 backward
/// (4N, not the 6N of full training), N = the seven projections of every layer plus the LM head.
/// Causal attention: 2·T²·Hq·D per sequence per layer forward (QKᵀ and PV over the lower triangle),
/// 2.5x that backward (flash-attention's count). LoRA: 2·r·(in+out) per projection per token
/// forward, twice that backward (dx through A and B, and dA, dB), i.e. 6·r·(in+out). Recomputation
/// under gradient checkpointing is not counted (MFU counts the model's work, not the hardware's);
/// neither is padding: a batch of variable-length examples counts its real tokens.
/// </summary>
internal static class Flops
{
    public static double PerStep(ModelConfig c, int rank, int batch, int seq) => PerBatch(c, rank, Enumerable.Repeat(seq, batch));

    public static double PerBatch(ModelConfig c, int rank, IEnumerable<int> lengths)
    {
        double n = (double)c.VocabSize * c.HiddenSize, lora = 0;
        foreach (var p in Projections.All)
        {
            n += (double)p.InFeatures(c) * p.OutFeatures(c) * c.NumLayers;
            lora += 6.0 * rank * (p.InFeatures(c) + p.OutFeatures(c)) * c.NumLayers;
        }
        double tokens = 0, squares = 0;
        foreach (var t in lengths)
        {
            tokens += t;
            squares += (double)t * t;
        }
        var attention = 2.0 * squares * c.NumHeads * c.HeadDim * c.NumLayers * 3.5;
        return 4 * n * tokens + lora * tokens + attention;
    }

    /// <summary>
    /// The device's dense bf16 tensor-core peak in FLOP/s, by the name the driver reports, or null
    /// when this table does not know it (MFU is then not reported rather than guessed).
    /// </summary>
    public static double? PeakBf16(string deviceName) => deviceName switch
    {
        // SXM parts, which the driver names plainly; the H200 has the H100's compute.
        _ when deviceName.Contains("H100") && deviceName.Contains("PCIe") => 756.5e12,
        _ when (deviceName.Contains("H100") || deviceName.Contains("H200")) && deviceName.Contains("NVL") => 835.5e12,
        _ when deviceName.Contains("H100") || deviceName.Contains("H200") => 989.4e12,
        _ when deviceName.Contains("A100") => 312e12,
        _ => null,
    };
}
