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
    /// <summary><c>self_attn.q_norm.weight</c> (qwen3), else null.</summary>
    public float[]? QNorm { get; init; }
    /// <summary><c>self_attn.k_norm.weight</c> (qwen3), else null.</summary>
    public float[]? KNorm { get; init; }
    /// <summary>Transposed projection weights [in × out] for the backward pass, made on demand.</summary>
    public float[]?[] LinearTransposed { get; } = new float[]?[Projections.All.Length];
}

/// <summary>All frozen base weights of a Llama-family model in F32.</summary>
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
    /// <summary>The LM head transposed [hidden × vocab], made on demand for the backward pass.</summary>
    public float[]? LmHeadTransposed { get; private set; }

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
                InputNorm = Read($"model.layers.{l}.input_layernorm.weight", c.HiddenSize),
                PostNorm = Read($"model.layers.{l}.post_attention_layernorm.weight", c.HiddenSize),
                Linear = linear,
                Bias = bias,
                QNorm = c.QkNorm ? Read($"model.layers.{l}.self_attn.q_norm.weight", c.HeadDim) : null,
                KNorm = c.QkNorm ? Read($"model.layers.{l}.self_attn.k_norm.weight", c.HeadDim) : null,
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
            FinalNorm = Read("model.norm.weight", c.HiddenSize),
            LmHead = lmHead,
        };
    }

    /// <summary>Every tensor in Hugging Face naming, for writing a (merged) model.</summary>
    public IEnumerable<TensorToWrite> ToTensors(TensorDType dtype = TensorDType.F32)
    {
        var c = Config;
        yield return new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], Embedding, dtype);
        for (var l = 0; l < Layers.Length; l++)
        {
            var layer = Layers[l];
            yield return new($"model.layers.{l}.input_layernorm.weight", [c.HiddenSize], layer.InputNorm, dtype);
            yield return new($"model.layers.{l}.post_attention_layernorm.weight", [c.HiddenSize], layer.PostNorm, dtype);
            foreach (var p in Projections.All)
            {
                yield return new(LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], layer.Linear[(int)p], dtype);
                if (layer.Bias[(int)p] is { } b) yield return new(LinearName(l, p, "bias"), [p.OutFeatures(c)], b, dtype);
            }
            if (layer.QNorm is { } qn) yield return new($"model.layers.{l}.self_attn.q_norm.weight", [c.HeadDim], qn, dtype);
            if (layer.KNorm is { } kn) yield return new($"model.layers.{l}.self_attn.k_norm.weight", [c.HeadDim], kn, dtype);
        }
        yield return new("model.norm.weight", [c.HiddenSize], FinalNorm, dtype);
        if (!c.TieWordEmbeddings) yield return new("lm_head.weight", [c.VocabSize, c.HiddenSize], LmHead, dtype);
    }

    /// <summary>Makes the transposed copies the backward pass multiplies with (once).</summary>
    public void EnsureTransposed(IComputeBackend backend)
    {
        var c = Config;
        lock (this)
        {
            if (LmHeadTransposed is null)
            {
                var t = new float[LmHead.Length];
                backend.Transpose(LmHead, 0, t, 0, c.VocabSize, c.HiddenSize);
                LmHeadTransposed = t;
            }
            foreach (var layer in Layers)
                foreach (var p in Projections.All)
                {
                    if (layer.LinearTransposed[(int)p] is not null) continue;
                    var t = new float[layer.Linear[(int)p].Length];
                    backend.Transpose(layer.Linear[(int)p], 0, t, 0, p.OutFeatures(c), p.InFeatures(c));
                    layer.LinearTransposed[(int)p] = t;
                }
        }
    }
}
