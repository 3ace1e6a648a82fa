using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Model;

/// <summary>
/// Reads and writes Gemma 3's text <c>config.json</c> (<c>Gemma3TextConfig</c>) with transformers'
/// defaults for absent keys: scaled embeddings, (1 + weight) norms, sandwich norms, GeGLU,
/// query_pre_attn_scalar, interleaved sliding-window layers with their own RoPE base, tied embeddings.
/// </summary>
internal static class GemmaConfig
{
    private const string Sliding = "sliding_attention", Full = "full_attention";

    public static ModelConfig Parse(JsonObject root, string path)
    {
        foreach (var key in new[] { "attn_logit_softcapping", "final_logit_softcapping" })
            if (root[key] is not null)
                throw new FineTuneException("FT3090",
                    $"config.json sets '{key}' ({root[key]!.ToJsonString()}); Gemma 3 has no soft-capping and the engine does not implement it (Gemma 2 checkpoints are not supported).", path);
        if (ModelConfig.OptBool(root, "use_bidirectional_attention", path) == true)
            throw new FineTuneException("FT3090", "config.json sets 'use_bidirectional_attention' (an embedding model); the engine trains causal language models only.", path);
        var activation = root["hidden_activation"] is JsonValue act && act.TryGetValue<string>(out var a) ? a : "gelu_pytorch_tanh";
        if (activation is not ("gelu_pytorch_tanh" or "gelu_tanh"))
            throw new FineTuneException("FT3091", $"hidden_activation '{activation}' is not supported for gemma3_text; the engine implements gelu_pytorch_tanh.", path);

        var hidden = ModelConfig.OptInt(root, "hidden_size", path) ?? 2304;
        var heads = ModelConfig.OptInt(root, "num_attention_heads", path) ?? 8;
        var layers = ModelConfig.OptInt(root, "num_hidden_layers", path) ?? 26;
        var bias = ModelConfig.OptBool(root, "attention_bias", path) == true;
        var (globalTheta, localTheta, linear) = RopeBases(root, path);
        var config = new ModelConfig
        {
            ModelType = "gemma3_text",
            VocabSize = ModelConfig.OptInt(root, "vocab_size", path) ?? 262208,
            HiddenSize = hidden,
            IntermediateSize = ModelConfig.OptInt(root, "intermediate_size", path) ?? 9216,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = ModelConfig.OptInt(root, "num_key_value_heads", path) ?? 4,
            HeadDim = ModelConfig.OptInt(root, "head_dim", path) ?? 256,
            RmsNormEps = ModelConfig.OptDouble(root, "rms_norm_eps", path) ?? 1e-6,
            RopeTheta = globalTheta,
            RopeLocalTheta = localTheta,
            LinearRopeFactor = linear,
            TieWordEmbeddings = ModelConfig.OptBool(root, "tie_word_embeddings", path) ?? true,
            AttentionBias = bias,
            OutputBias = bias,
            QkNorm = true,
            MaxPositionEmbeddings = ModelConfig.OptInt(root, "max_position_embeddings", path) ?? 131072,
            BosTokenId = ModelConfig.OptInt(root, "bos_token_id", path) ?? 2,
            EosTokenId = root["eos_token_id"] is JsonArray e && e.Count > 0 ? e[0]!.GetValue<int>() : ModelConfig.OptInt(root, "eos_token_id", path) ?? 1,
            // transformers: self.embed_scale = hidden_size**0.5, a float32 buffer.
            EmbeddingScale = (float)Math.Sqrt(hidden),
            NormWeightOffset = true,
            SandwichNorms = true,
            Activation = GateActivation.GeluTanh,
            QueryPreAttnScalar = ModelConfig.OptDouble(root, "query_pre_attn_scalar", path) ?? 256,
            SlidingWindow = ModelConfig.OptInt(root, "sliding_window", path) ?? 4096,
            SlidingLayers = LayerTypes(root, layers, path),
        };
        config.Validate(path);
        return config;
    }

    /// <summary><c>layer_types</c> when given, else transformers' default from <c>sliding_window_pattern</c> (6): every 6th layer global.</summary>
    private static bool[] LayerTypes(JsonObject root, int layers, string path)
    {
        if (root["layer_types"] is JsonArray types)
            return types.Select(t => (t as JsonValue)?.TryGetValue<string>(out var s) == true ? s switch
            {
                Sliding => true,
                Full => false,
                _ => throw new FineTuneException("FT3014", $"config.json: layer_types entry '{s}' is neither {Sliding} nor {Full}.", path),
            } : throw new FineTuneException("FT3014", "config.json: layer_types must list strings.", path)).ToArray();
        var pattern = ModelConfig.OptInt(root, "sliding_window_pattern", path) ?? 6;
        if (pattern < 1) throw new FineTuneException("FT3014", "config.json: sliding_window_pattern must be positive.", path);
        return Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0).ToArray();
    }

    /// <summary>RoPE bases of global and local layers and the global layers' linear factor, from transformers 4 keys or 5's <c>rope_parameters</c>.</summary>
    private static (double Global, double Local, double? Linear) RopeBases(JsonObject root, string path)
    {
        if (root["rope_parameters"] is JsonObject rp && rp["full_attention"] is JsonObject full)
        {
            var local = rp["sliding_attention"] as JsonObject;
            if (local is not null && Linear(local, path) is not null)
                throw new FineTuneException("FT3016", "rope_parameters.sliding_attention has a scaling; Gemma 3's local layers have none.", path);
            return (ModelConfig.OptDouble(full, "rope_theta", path) ?? 1_000_000,
                (local is null ? null : ModelConfig.OptDouble(local, "rope_theta", path)) ?? 10_000,
                Linear(full, path));
        }
        return (ModelConfig.OptDouble(root, "rope_theta", path) ?? 1_000_000,
            ModelConfig.OptDouble(root, "rope_local_base_freq", path) ?? 10_000,
            root["rope_scaling"] is JsonObject s ? Linear(s, path) : null);
    }

    private static double? Linear(JsonObject o, string path)
    {
        var type = (o["rope_type"] ?? o["type"])?.GetValue<string>();
        if (type is null or "default") return null;
        if (type != "linear")
            throw new FineTuneException("FT3016", $"rope_scaling type '{type}' is not supported for gemma3_text; only 'linear' scaling is.", path);
        return ModelConfig.OptDouble(o, "factor", path) ?? 1;
    }

    public static string ToJson(ModelConfig c)
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForCausalLM"),
            ["model_type"] = c.ModelType,
            ["vocab_size"] = c.VocabSize,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.NumLayers,
            ["num_attention_heads"] = c.NumHeads,
            ["num_key_value_heads"] = c.NumKvHeads,
            ["head_dim"] = c.HeadDim,
            ["hidden_activation"] = "gelu_pytorch_tanh",
            ["rms_norm_eps"] = c.RmsNormEps,
            ["rope_theta"] = c.RopeTheta,
            ["rope_local_base_freq"] = c.RopeLocalTheta ?? 10_000,
            ["query_pre_attn_scalar"] = c.QueryPreAttnScalar ?? 256,
            ["sliding_window"] = c.SlidingWindow,
            ["layer_types"] = new JsonArray(Enumerable.Range(0, c.NumLayers).Select(l => (JsonNode)(c.IsSlidingLayer(l) ? Sliding : Full)).ToArray()),
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["tie_word_embeddings"] = c.TieWordEmbeddings,
            ["attention_bias"] = c.AttentionBias,
            ["attn_logit_softcapping"] = null,
            ["final_logit_softcapping"] = null,
            ["initializer_range"] = 0.02,
            ["torch_dtype"] = "float32",
        };
        // transformers before 4.53 ignores layer_types and derives the layers from sliding_window_pattern.
        if (Enumerable.Range(1, c.NumLayers).FirstOrDefault(p => Enumerable.Range(0, c.NumLayers).All(l => c.IsSlidingLayer(l) == ((l + 1) % p != 0))) is var pattern and > 0)
            o["sliding_window_pattern"] = pattern;
        if (c.LinearRopeFactor is { } f) o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = f };
        if (c.BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (c.EosTokenId is { } eos) o["eos_token_id"] = eos;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
