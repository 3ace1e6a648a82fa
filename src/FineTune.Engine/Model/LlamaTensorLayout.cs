using FineTune.Core.Diagnostics;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Model;

/// <summary>Which weight of the model a tensor of the checkpoint is.</summary>
public enum LlamaTensorKind
{
    /// <summary><c>model.layers.L.input_layernorm.weight</c>.</summary>
    InputNorm,
    /// <summary><c>model.layers.L.post_attention_layernorm.weight</c>.</summary>
    PostNorm,
    /// <summary>A projection's weight [out × in].</summary>
    Linear,
    /// <summary>A projection's bias (qwen2's q/k/v, an output bias).</summary>
    Bias,
    /// <summary><c>self_attn.q_norm.weight</c> (qwen3).</summary>
    QNorm,
    /// <summary><c>self_attn.k_norm.weight</c> (qwen3).</summary>
    KNorm,
    /// <summary><c>model.embed_tokens.weight</c> [vocab × hidden].</summary>
    Embedding,
    /// <summary><c>lm_head.weight</c>, only when the head is not tied to the embedding.</summary>
    LmHead,
    /// <summary><c>model.norm.weight</c>.</summary>
    FinalNorm,
    /// <summary>Gemma 3's <c>post_attention_layernorm.weight</c>: the norm of the attention output before the residual add.</summary>
    AttentionOutNorm,
    /// <summary>Gemma 3's <c>post_feedforward_layernorm.weight</c>: the norm of the MLP output before the residual add.</summary>
    MlpOutNorm,
}

/// <summary>One tensor a model of some <see cref="ModelConfig"/> is built from.</summary>
/// <param name="Name">Hugging Face name.</param>
/// <param name="Shape">The shape config.json implies, Hugging Face's [out, in] layout.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Layer">The decoder layer, -1 for the embedding, head and final norm.</param>
/// <param name="Projection">The projection of a <see cref="LlamaTensorKind.Linear"/> or <see cref="LlamaTensorKind.Bias"/>.</param>
public sealed record LlamaTensor(string Name, long[] Shape, LlamaTensorKind Kind, int Layer = -1, Projection Projection = default)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// The tensors a Llama-family model needs, in the order <see cref="LlamaWeights.Load(ModelConfig, ModelWeights)"/>
/// reads them: per layer the projections (each with its bias where the architecture has one), the two
/// norms and qwen3's q/k norms; then the embedding, the head when untied (a tied checkpoint that still
/// stores <c>lm_head.weight</c> has it ignored) and the final norm. Weights are taken as stored (no
/// permutation): Hugging Face's q/k rows are already in the rotate-half order the kernels use.
/// </summary>
public static class LlamaTensorLayout
{
    /// <summary>Every tensor of a model of <paramref name="c"/>.</summary>
    public static IReadOnlyList<LlamaTensor> For(ModelConfig c)
    {
        var result = new List<LlamaTensor>();
        for (var l = 0; l < c.NumLayers; l++)
        {
            foreach (var p in Projections.All)
            {
                result.Add(new(LlamaWeights.LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], LlamaTensorKind.Linear, l, p));
                if (HasBias(c, p)) result.Add(new(LlamaWeights.LinearName(l, p, "bias"), [p.OutFeatures(c)], LlamaTensorKind.Bias, l, p));
            }
            result.Add(new(NormName(c, l, LlamaTensorKind.InputNorm), [c.HiddenSize], LlamaTensorKind.InputNorm, l));
            result.Add(new(NormName(c, l, LlamaTensorKind.PostNorm), [c.HiddenSize], LlamaTensorKind.PostNorm, l));
            if (c.SandwichNorms)
            {
                result.Add(new(NormName(c, l, LlamaTensorKind.AttentionOutNorm), [c.HiddenSize], LlamaTensorKind.AttentionOutNorm, l));
                result.Add(new(NormName(c, l, LlamaTensorKind.MlpOutNorm), [c.HiddenSize], LlamaTensorKind.MlpOutNorm, l));
            }
            if (c.QkNorm)
            {
                result.Add(new($"model.layers.{l}.self_attn.q_norm.weight", [c.HeadDim], LlamaTensorKind.QNorm, l));
                result.Add(new($"model.layers.{l}.self_attn.k_norm.weight", [c.HeadDim], LlamaTensorKind.KNorm, l));
            }
        }
        result.Add(new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], LlamaTensorKind.Embedding));
        if (!c.TieWordEmbeddings) result.Add(new("lm_head.weight", [c.VocabSize, c.HiddenSize], LlamaTensorKind.LmHead));
        result.Add(new("model.norm.weight", [c.HiddenSize], LlamaTensorKind.FinalNorm));
        return result;
    }

    /// <summary>
    /// Hugging Face name of a layer norm. The norm before the MLP is <c>post_attention_layernorm</c>
    /// in Llama but <c>pre_feedforward_layernorm</c> in Gemma 3, where <c>post_attention_layernorm</c>
    /// normalizes the attention output instead.
    /// </summary>
    public static string NormName(ModelConfig c, int layer, LlamaTensorKind kind) => $"model.layers.{layer}." + kind switch
    {
        LlamaTensorKind.InputNorm => "input_layernorm.weight",
        LlamaTensorKind.PostNorm => c.SandwichNorms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight",
        LlamaTensorKind.AttentionOutNorm => "post_attention_layernorm.weight",
        LlamaTensorKind.MlpOutNorm => "post_feedforward_layernorm.weight",
        LlamaTensorKind.QNorm => "self_attn.q_norm.weight",
        LlamaTensorKind.KNorm => "self_attn.k_norm.weight",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a layer norm"),
    };

    /// <summary>True when projection <paramref name="p"/> has a bias in this architecture.</summary>
    public static bool HasBias(ModelConfig c, Projection p) =>
        p is Projection.Q or Projection.K or Projection.V ? c.AttentionBias : p == Projection.O && c.OutputBias;

    /// <summary>Checks that <paramref name="w"/> holds <paramref name="name"/> with <paramref name="shape"/>: FT3012 when absent, FT3017 when shaped otherwise.</summary>
    public static void CheckShape(ModelWeights w, string name, long[] shape)
    {
        var actual = w.Shape(name);
        if (!actual.SequenceEqual(shape))
            throw new FineTuneException("FT3017",
                $"Tensor '{name}' has shape [{string.Join(", ", actual)}], config.json implies [{string.Join(", ", shape)}].", w.Directory);
    }

    /// <summary>Checks every tensor of <paramref name="c"/> in <paramref name="w"/> (headers only, no data read).</summary>
    public static void CheckAll(ModelConfig c, ModelWeights w)
    {
        foreach (var t in For(c)) CheckShape(w, t.Name, t.Shape);
    }
}
