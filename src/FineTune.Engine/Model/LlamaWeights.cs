using FineTune.Engine.Backends;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Model;

/// <summary>The frozen weights of one decoder layer, as F32, in Hugging Face's [out, in] layout.</summary>
public sealed class LayerWeights
{
    /// <summary><c>input_layernorm.weight</c>.</summary>
    public required float[] InputNorm { get; init; }
    /// <summary><c>post_attention_layernorm.weight</c>.</summary>
    public required float[] PostNorm { get; init; }
    /// <summary>Projection weights [out × in], indexed by <see cref="Projection"/>.</summary>
    public required float[][] Linear { get; init; }
    /// <summary>Projection biases, null where the architecture has none.</summary>
    public required float[]?[] Bias { get; init; }
    /// <summary>Norm of the attention output before the residual add (Gemma 3), else null.</summary>
    public float[]? AttentionOutNorm { get; init; }
    /// <summary>Norm of the MLP output before the residual add (Gemma 3), else null.</summary>
    public float[]? MlpOutNorm { get; init; }
    /// <summary><c>self_attn.q_norm.weight</c> (qwen3), else null.</summary>
    public float[]? QNorm { get; init; }
    /// <summary><c>self_attn.k_norm.weight</c> (qwen3), else null.</summary>
    public float[]? KNorm { get; init; }
}

/// <summary>
/// All frozen base weights of a Llama-family model in F32. Norm weights are held as the factor the
/// kernels multiply by: Gemma's stored offsets have one added on load (1 + w in F32, as transformers
/// computes it) and subtracted again when written.
/// </summary>
public sealed class LlamaWeights
{
    /// <summary>The architecture.</summary>
    public required ModelConfig Config { get; init; }
    /// <summary><c>model.embed_tokens.weight</c> [vocab × hidden].</summary>
    public required float[] Embedding { get; init; }
    /// <summary>Decoder layers.</summary>
    public required LayerWeights[] Layers { get; init; }
    /// <summary><c>model.norm.weight</c>.</summary>
    public required float[] FinalNorm { get; init; }
    /// <summary><c>lm_head.weight</c> [vocab × hidden]; the embedding itself when tied.</summary>
    public required float[] LmHead { get; init; }

    /// <summary>Hugging Face tensor name of a projection's weight.</summary>
    public static string LinearName(int layer, Projection p, string suffix = "weight") => $"model.layers.{layer}.{p.Path()}.{suffix}";

    /// <summary>Loads the weights of a model folder (config.json + safetensors).</summary>
    public static LlamaWeights Load(string modelDirectory)
    {
        var config = ModelConfig.Load(modelDirectory);
        using var weights = ModelWeights.Open(modelDirectory);
        return Load(config, weights);
    }

    /// <summary>Reads every tensor the architecture needs, checking each shape.</summary>
    public static LlamaWeights Load(ModelConfig c, ModelWeights w)
    {
        float[] Read(string name, params long[] shape)
        {
            LlamaTensorLayout.CheckShape(w, name, shape);
            return w.ReadF32(name);
        }
        var stored = new Dictionary<string, float[]>(StringComparer.Ordinal);
        float[] Norm(string name, int size)
        {
            var v = Read(name, size);
            if (!c.NormWeightOffset) return v;
            stored[name] = (float[])v.Clone();
            for (var i = 0; i < v.Length; i++) v[i] += 1f;
            return v;
        }
        float[]? LayerNorm(int l, LlamaTensorKind kind, int size, bool present) =>
            present ? Norm(LlamaTensorLayout.NormName(c, l, kind), size) : null;
        var layers = new LayerWeights[c.NumLayers];
        for (var l = 0; l < c.NumLayers; l++)
        {
            var linear = new float[Projections.All.Length][];
            var bias = new float[]?[Projections.All.Length];
            foreach (var p in Projections.All)
            {
                linear[(int)p] = Read(LinearName(l, p), p.OutFeatures(c), p.InFeatures(c));
                if (LlamaTensorLayout.HasBias(c, p)) bias[(int)p] = Read(LinearName(l, p, "bias"), p.OutFeatures(c));
            }
            layers[l] = new LayerWeights
            {
                InputNorm = LayerNorm(l, LlamaTensorKind.InputNorm, c.HiddenSize, true)!,
                PostNorm = LayerNorm(l, LlamaTensorKind.PostNorm, c.HiddenSize, true)!,
                AttentionOutNorm = LayerNorm(l, LlamaTensorKind.AttentionOutNorm, c.HiddenSize, c.SandwichNorms),
                MlpOutNorm = LayerNorm(l, LlamaTensorKind.MlpOutNorm, c.HiddenSize, c.SandwichNorms),
                Linear = linear,
                Bias = bias,
                QNorm = LayerNorm(l, LlamaTensorKind.QNorm, c.HeadDim, c.QkNorm),
                KNorm = LayerNorm(l, LlamaTensorKind.KNorm, c.HeadDim, c.QkNorm),
            };
        }
        var embedding = Read("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
        // Some tied checkpoints still store lm_head.weight; the tie decides which one is used.
        var lmHead = c.TieWordEmbeddings
            ? embedding
            : Read("lm_head.weight", c.VocabSize, c.HiddenSize);
        return new LlamaWeights
        {
            Config = c,
            Embedding = embedding,
            Layers = layers,
            FinalNorm = Norm("model.norm.weight", c.HiddenSize),
            LmHead = lmHead,
            StoredNorms = stored,
        };
    }

    /// <summary>
    /// The same model with every projection weight replaced by <paramref name="replace"/>(its values)
    /// (computed in parallel); the other tensors are shared, not copied.
    /// </summary>
    public LlamaWeights WithLinear(Func<float[], float[]> replace)
    {
        var projections = Projections.All.Length;
        var linear = new float[Layers.Length * projections][];
        Parallel.For(0, linear.Length, i => linear[i] = replace(Layers[i / projections].Linear[i % projections]));
        return new LlamaWeights
        {
            Config = Config,
            Embedding = Embedding,
            FinalNorm = FinalNorm,
            LmHead = LmHead,
            StoredNorms = StoredNorms,
            Layers = Layers.Select((l, i) => new LayerWeights
            {
                InputNorm = l.InputNorm, PostNorm = l.PostNorm, AttentionOutNorm = l.AttentionOutNorm, MlpOutNorm = l.MlpOutNorm,
                QNorm = l.QNorm, KNorm = l.KNorm, Bias = l.Bias, Linear = linear[(i * projections)..((i + 1) * projections)],
            }).ToArray(),
        };
    }

    /// <summary>Norm weights as the checkpoint stores them, by name, where they differ from the factors held (Gemma).</summary>
    private IReadOnlyDictionary<string, float[]> StoredNorms { get; init; } = new Dictionary<string, float[]>();

    /// <summary>Every tensor in Hugging Face naming, for writing a (merged) model.</summary>
    public IEnumerable<TensorToWrite> ToTensors(TensorDType dtype = TensorDType.F32)
    {
        var c = Config;
        // Written back exactly as read: (1 + w) − 1 would not round-trip in F32.
        float[] Stored(string name, float[] norm) =>
            !c.NormWeightOffset ? norm : StoredNorms.TryGetValue(name, out var raw) ? raw : norm.Select(v => v - 1f).ToArray();
        TensorToWrite Norm(int l, LlamaTensorKind kind, float[] v)
        {
            var name = LlamaTensorLayout.NormName(c, l, kind);
            return new(name, [v.Length], Stored(name, v), dtype);
        }
        yield return new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], Embedding, dtype);
        for (var l = 0; l < Layers.Length; l++)
        {
            var layer = Layers[l];
            yield return Norm(l, LlamaTensorKind.InputNorm, layer.InputNorm);
            yield return Norm(l, LlamaTensorKind.PostNorm, layer.PostNorm);
            if (layer.AttentionOutNorm is { } an) yield return Norm(l, LlamaTensorKind.AttentionOutNorm, an);
            if (layer.MlpOutNorm is { } mn) yield return Norm(l, LlamaTensorKind.MlpOutNorm, mn);
            foreach (var p in Projections.All)
            {
                yield return new(LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], layer.Linear[(int)p], dtype);
                if (layer.Bias[(int)p] is { } b) yield return new(LinearName(l, p, "bias"), [p.OutFeatures(c)], b, dtype);
            }
            if (layer.QNorm is { } qn) yield return Norm(l, LlamaTensorKind.QNorm, qn);
            if (layer.KNorm is { } kn) yield return Norm(l, LlamaTensorKind.KNorm, kn);
        }
        yield return new("model.norm.weight", [c.HiddenSize], Stored("model.norm.weight", FinalNorm), dtype);
        if (!c.TieWordEmbeddings) yield return new("lm_head.weight", [c.VocabSize, c.HiddenSize], LmHead, dtype);
    }
}
