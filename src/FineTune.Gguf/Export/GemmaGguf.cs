using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;
using FineTune.Gguf.Format;

namespace FineTune.Gguf.Export;

/// <summary>
/// What llama.cpp's <c>gemma3</c> graph needs beyond the common keys, and the Gemma 3 settings it
/// cannot be told: it derives the attention scale from head_dim (hidden/heads for the 62-layer 27B)
/// and takes 10000 as the local RoPE base unless the file says otherwise, so a model whose
/// query_pre_attn_scalar disagrees would run in Ollama as a different model. Such a model is refused
/// (FT4030) rather than exported wrong.
/// </summary>
public static class GemmaGguf
{
    /// <summary>Throws FT4030 when llama.cpp would run <paramref name="c"/> with another attention scale.</summary>
    public static void CheckRepresentable(ModelConfig c, string modelDirectory)
    {
        if (c.ModelType != "gemma3_text") return;
        var llamaCppScale = c.NumLayers == 62 ? 1f / MathF.Sqrt((float)c.HiddenSize / c.NumHeads) : 1f / MathF.Sqrt(c.HeadDim);
        if (Math.Abs(c.AttentionScale - llamaCppScale) > 1e-7f * llamaCppScale)
            throw new FineTuneException("FT4030",
                $"query_pre_attn_scalar ({c.QueryPreAttnScalar}) gives an attention scale of {c.AttentionScale:G6}, but llama.cpp's gemma3 graph uses {llamaCppScale:G6} for this shape; the GGUF would not run as the trained model.",
                Path.Combine(modelDirectory, "config.json"));
    }

    /// <summary>The sliding window, which layers use it, and the local RoPE base.</summary>
    public static void WriteHyperParameters(GgufWriter w, string arch, ModelConfig c)
    {
        w.Set($"{arch}.attention.sliding_window", GgufValue.Of((uint)c.SlidingWindow!.Value));
        w.Set($"{arch}.attention.sliding_window_pattern",
            GgufValue.Array(GgufValueType.Bool, Enumerable.Range(0, c.NumLayers).Select(c.IsSlidingLayer).ToArray()));
        if (c.RopeLocalTheta is { } local) w.Set($"{arch}.rope.freq_base_swa", GgufValue.Of((float)local));
        if (c.LinearRopeFactor is { } factor)
        {
            w.Set($"{arch}.rope.scaling.type", GgufValue.Of("linear"));
            w.Set($"{arch}.rope.scaling.factor", GgufValue.Of((float)factor));
        }
    }
}
