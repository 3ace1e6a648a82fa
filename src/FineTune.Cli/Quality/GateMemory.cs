using System.Globalization;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Cli.Quality;

/// <summary>
/// What the quality gate holds in memory at its peak, checked before anything is loaded. The gate
/// runs one model at a time on the CPU — first base + adapter, then each GGUF — each as float32
/// weights (the engine's CPU kernels compute in float32; an 8B model is about 32 GB), plus the
/// activations of one evaluation batch with one layer's buffers shared by all layers. A model that
/// does not fit the memory this process may use (the host's, a container's limit, or
/// <c>DOTNET_GCHeapHardLimit</c>) is refused with FT4060 naming the sizes and the property that skips
/// the gate, rather than failing later with an out-of-memory crash or swapping the host to a halt.
/// </summary>
public static class GateMemory
{
    /// <summary>Bytes of every weight the engine holds for <paramref name="c"/> in float32 (a tied head is the embedding, counted once).</summary>
    public static long WeightBytes(ModelConfig c)
    {
        long perLayer = 0;
        foreach (var p in Projections.All)
        {
            perLayer += (long)p.OutFeatures(c) * p.InFeatures(c);
            if (LlamaTensorLayout.HasBias(c, p)) perLayer += p.OutFeatures(c);
        }
        perLayer += 2L * c.HiddenSize;                      // input and post-attention norms
        if (c.SandwichNorms) perLayer += 2L * c.HiddenSize; // Gemma 3's norms of the attention and MLP outputs
        if (c.QkNorm) perLayer += 2L * c.HeadDim;
        var embedding = (long)c.VocabSize * c.HiddenSize;
        var total = c.NumLayers * perLayer + embedding + c.HiddenSize + (c.TieWordEmbeddings ? 0 : embedding);
        return 4 * total;
    }

    /// <summary>
    /// Bytes of the evaluation buffers for a batch of <paramref name="tokens"/> tokens whose sequences'
    /// squared lengths sum to <paramref name="squaredLengths"/>: the residual stream of every layer,
    /// one layer's activations (shared: forward only), the backward-sized scratch the graph allocates
    /// alongside, the attention probabilities and the logits of one loss chunk.
    /// </summary>
    public static long ActivationBytes(ModelConfig c, long tokens, long squaredLengths, int loraRank)
    {
        long h = c.HiddenSize, big = Math.Max(Math.Max(c.IntermediateSize, c.QDim), c.HiddenSize), r = Math.Max(1, loraRank);
        var residuals = (c.NumLayers + 1) * h + 4 * h + 1;
        var layer = 3 * h + 2 + 2L * c.QDim + 2L * c.KvDim + 3L * c.IntermediateSize + 7 * r
            + (c.QkNorm ? c.QDim + c.KvDim + c.NumHeads + c.NumKvHeads : 0) + (c.SandwichNorms ? 2 * h + 2 : 0);
        var scratch = 2L * c.QDim + 2L * c.KvDim + 5 * big + r;
        var perToken = residuals + layer + scratch;
        // The head's chunk: its logits, the gathered rows and their gradient, and per 512-column block a
        // max, a sum, a factor and a double raw sum (6 floats' worth).
        long lossChunkRows = LlamaGraph.LossChunkRows(c.VocabSize), blocks = (c.VocabSize + 511) / 512;
        var floats = tokens * perToken + squaredLengths * c.NumHeads + lossChunkRows * (c.VocabSize + 2 * h + 6 * blocks);
        // An eighth more for what the sum leaves out: per-row and per-head vectors, RoPE tables, bookkeeping.
        return 4 * floats * 9 / 8;
    }

    /// <summary>
    /// FT4060 when <paramref name="required"/> bytes do not fit beside what this process already holds
    /// in the memory it may use; <paramref name="weights"/> is the float32 weights' share, for the message.
    /// </summary>
    public static void Check(long weights, long required)
    {
        var limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var available = limit - GC.GetTotalMemory(forceFullCollection: false);
        if (required <= available) return;
        var parameters = weights / 4;
        var billions = (parameters / 1e9).ToString("0.###", CultureInfo.InvariantCulture);
        throw new FineTuneException("FT4060",
            $"The quality gate needs about {Gb(required)} of memory to run this model on the CPU ({billions} billion parameters as float32: {Gb(weights)}, " +
            $"one model at a time; evaluation buffers {Gb(required - weights)}), but this process may use {Gb(available)} more (limit {Gb(limit)}: the host's memory, a container's limit or DOTNET_GCHeapHardLimit). " +
            "Set FineTuneQuantizationGate=false to skip the gate (the GGUFs are still written, unchecked), or build on a host with more memory.");
    }

    private static string Gb(long bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.0} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB");
}
