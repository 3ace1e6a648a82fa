using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Model;

/// <summary>
/// The architecture of a Llama-family model, read from Hugging Face's <c>config.json</c>.
/// Supported <c>model_type</c>s: llama, mistral, qwen2, qwen3 (all RMSNorm + RoPE + GQA + SwiGLU;
/// they differ only in biases, q/k norms and defaults) and gemma3_text (also a <c>gemma3</c> config
/// whose <c>text_config</c> holds it), whose differences are explicit properties resolved here.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The model types this engine runs.</summary>
    public static readonly IReadOnlyList<string> SupportedTypes = ["llama", "mistral", "qwen2", "qwen3", "gemma3_text"];

    /// <summary><c>model_type</c>.</summary>
    public required string ModelType { get; init; }
    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }
    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }
    /// <summary><c>intermediate_size</c> of the SwiGLU MLP.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumLayers { get; init; }
    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumHeads { get; init; }
    /// <summary><c>num_key_value_heads</c> (GQA); equals <see cref="NumHeads"/> when absent.</summary>
    public required int NumKvHeads { get; init; }
    /// <summary><c>head_dim</c>; hidden_size / num_attention_heads when absent.</summary>
    public required int HeadDim { get; init; }
    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary><c>rope_theta</c>.</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary><c>rope_scaling</c> of type <c>llama3</c>, or null for plain RoPE.</summary>
    public Llama3RopeScaling? RopeScaling { get; init; }
    /// <summary>
    /// Divisors of each rotary frequency as a GGUF's <c>rope_freqs.weight</c> stores them (llama.cpp's
    /// form of llama3 scaling, read back from a GGUF), or null. Not a config.json key.
    /// </summary>
    public IReadOnlyList<float>? RopeFrequencyFactors { get; init; }
    /// <summary><c>dtype</c> (transformers 5) or <c>torch_dtype</c> (4): the dtype the weights were published in, e.g. bfloat16.</summary>
    public string? DType { get; init; }
    /// <summary><c>tie_word_embeddings</c>: the LM head reuses the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>q, k and v projections carry a bias (qwen2 always; llama/mistral via <c>attention_bias</c>).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>The output projection carries a bias (llama's <c>attention_bias</c> also covers o_proj; qwen2's does not).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Per-head RMSNorm on q and k before RoPE (qwen3).</summary>
    public bool QkNorm { get; init; }
    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary><c>bos_token_id</c>, when set.</summary>
    public int? BosTokenId { get; init; }
    /// <summary><c>eos_token_id</c> (first one when a list), when set.</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Factor on the token embeddings before the first layer (Gemma: sqrt(hidden_size) in F32), else 1.</summary>
    public float EmbeddingScale { get; init; } = 1;
    /// <summary>Stored RMSNorm weights are offsets from one (Gemma multiplies by 1 + weight).</summary>
    public bool NormWeightOffset { get; init; }
    /// <summary>RMSNorm on the attention output and on the MLP output before each residual add (Gemma 3).</summary>
    public bool SandwichNorms { get; init; }
    /// <summary>The MLP's gate activation: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU).</summary>
    public GateActivation Activation { get; init; } = GateActivation.Silu;
    /// <summary><c>query_pre_attn_scalar</c>: attention logits are scaled by its inverse square root instead of head_dim's.</summary>
    public double? QueryPreAttnScalar { get; init; }
    /// <summary><c>sliding_window</c>: a local layer's query sees itself and the window − 1 tokens before it.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Per layer, true where the layer is local (sliding-window) attention; null when every layer is global.</summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }
    /// <summary><c>rope_local_base_freq</c>: the RoPE base of sliding-window layers (Gemma 3).</summary>
    public double? RopeLocalTheta { get; init; }
    /// <summary><c>rope_scaling</c> of type <c>linear</c> (global layers only in Gemma 3): positions divided by the factor.</summary>
    public double? LinearRopeFactor { get; init; }

    /// <summary>True when layer <paramref name="layer"/> attends over a sliding window.</summary>
    public bool IsSlidingLayer(int layer) => SlidingWindow is not null && SlidingLayers is { } s && s[layer];

    /// <summary>The factor on q·k: query_pre_attn_scalar^-0.5 when set, else 1/sqrt(head_dim).</summary>
    public float AttentionScale => QueryPreAttnScalar is { } s ? (float)Math.Pow(s, -0.5) : 1f / MathF.Sqrt(HeadDim);

    /// <summary>Width of the query projection (heads × head_dim).</summary>
    public int QDim => NumHeads * HeadDim;
    /// <summary>Width of the key and value projections.</summary>
    public int KvDim => NumKvHeads * HeadDim;

    /// <summary>Reads <c>config.json</c> in <paramref name="modelDirectory"/>.</summary>
    public static ModelConfig Load(string modelDirectory)
    {
        var path = Path.Combine(modelDirectory, "config.json");
        if (!File.Exists(path))
            throw new FineTuneException("FT3014", "The base model folder has no config.json (expected a Hugging Face model folder).", modelDirectory);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses the JSON text of a <c>config.json</c>; <paramref name="path"/> is used in errors.</summary>
    public static ModelConfig Parse(string json, string path)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new FineTuneException("FT3014", "config.json is not a JSON object.", path);
        }
        catch (JsonException e)
        {
            throw new FineTuneException("FT3014", "config.json is not valid JSON: " + e.Message, path);
        }
        root = ConfigForms.LanguageModel(root, path);
        var type = Str(root, "model_type", path);
        if (type == "gemma3" && root["text_config"] is JsonObject text)
        {
            // The multimodal config: the language model's settings live in text_config (model_type gemma3_text).
            root = text;
            type = "gemma3_text";
        }
        if (type == "gemma3_text") return GemmaConfig.Parse(root, path);
        if (!SupportedTypes.Contains(type))
            throw new FineTuneException("FT3015",
                $"model_type '{type}' is not supported; the engine runs {string.Join(", ", SupportedTypes)}.", path);
        var hidden = Int(root, "hidden_size", path);
        var heads = Int(root, "num_attention_heads", path);
        var kvHeads = OptInt(root, "num_key_value_heads", path) ?? heads;
        var headDim = OptInt(root, "head_dim", path) ?? (heads > 0 ? hidden / heads : 0);
        var attentionBias = OptBool(root, "attention_bias", path);
        UnsupportedConfig.Check(root, type, path);
        var (ropeTheta, ropeScaling) = ConfigForms.Rope(root, path);
        var config = new ModelConfig
        {
            ModelType = type,
            VocabSize = Int(root, "vocab_size", path),
            HiddenSize = hidden,
            IntermediateSize = Int(root, "intermediate_size", path),
            NumLayers = Int(root, "num_hidden_layers", path),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            RmsNormEps = OptDouble(root, "rms_norm_eps", path) ?? 1e-6,
            RopeTheta = ropeTheta,
            RopeScaling = ropeScaling,
            DType = ConfigForms.DType(root, path),
            TieWordEmbeddings = OptBool(root, "tie_word_embeddings", path) ?? false,
            // qwen2 always has q/k/v biases and none on o_proj; mistral has none; llama and qwen3 follow attention_bias for all four.
            AttentionBias = type == "qwen2" || (type is "llama" or "qwen3" && attentionBias == true),
            OutputBias = type is "llama" or "qwen3" ? attentionBias == true : false,
            QkNorm = type == "qwen3",
            MaxPositionEmbeddings = OptInt(root, "max_position_embeddings", path) ?? 2048,
            BosTokenId = OptInt(root, "bos_token_id", path),
            EosTokenId = root["eos_token_id"] is JsonArray a && a.Count > 0 ? (int?)a[0]!.GetValue<int>() : OptInt(root, "eos_token_id", path),
        };
        config.Validate(path);
        return config;
    }

    internal void Validate(string path)
    {
        void Check(bool ok, string what)
        {
            if (!ok) throw new FineTuneException("FT3014", $"config.json: {what}.", path);
        }
        Check(VocabSize > 0 && HiddenSize > 0 && IntermediateSize > 0 && NumLayers > 0 && NumHeads > 0 && NumKvHeads > 0 && HeadDim > 0,
            "vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads and head_dim must be positive");
        Check(NumHeads % NumKvHeads == 0, $"num_attention_heads ({NumHeads}) must be a multiple of num_key_value_heads ({NumKvHeads})");
        Check(HeadDim % 2 == 0, $"head_dim ({HeadDim}) must be even for rotary embeddings");
        Check(SlidingWindow is null or > 0, "sliding_window must be positive");
        Check(SlidingLayers is null || SlidingLayers.Count == NumLayers, $"layer_types must list num_hidden_layers ({NumLayers}) entries");
    }

    /// <summary>The <c>config.json</c> text for this configuration (used when writing models).</summary>
    public string ToJson()
    {
        if (ModelType == "gemma3_text") return GemmaConfig.ToJson(this);
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelType switch
            {
                "mistral" => "MistralForCausalLM",
                "qwen2" => "Qwen2ForCausalLM",
                "qwen3" => "Qwen3ForCausalLM",
                _ => "LlamaForCausalLM",
            }),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKvHeads,
            ["head_dim"] = HeadDim,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = AttentionBias,
            ["mlp_bias"] = false,
            ["initializer_range"] = 0.02,
        };
        if (DType is { } dtype) o["torch_dtype"] = dtype;
        if (BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (EosTokenId is { } eos) o["eos_token_id"] = eos;
        if (RopeScaling is { } s)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = s.Factor,
                ["low_freq_factor"] = s.LowFreqFactor,
                ["high_freq_factor"] = s.HighFreqFactor,
                ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
            };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    internal static string Str(JsonObject o, string key, string path) =>
        o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new FineTuneException("FT3014", $"config.json has no string '{key}'.", path);

    internal static int Int(JsonObject o, string key, string path) =>
        OptInt(o, key, path) ?? throw new FineTuneException("FT3014", $"config.json has no '{key}'.", path);

    internal static int? OptInt(JsonObject o, string key, string path)
    {
        if (o[key] is null) return null;
        if (o[key] is JsonValue v && v.TryGetValue<int>(out var i)) return i;
        if (o[key] is JsonValue d && d.TryGetValue<double>(out var x) && x == Math.Floor(x) && Math.Abs(x) < int.MaxValue) return (int)x;
        throw new FineTuneException("FT3014", $"config.json: '{key}' must be a whole number.", path);
    }

    internal static double? OptDouble(JsonObject o, string key, string path)
    {
        if (o[key] is null) return null;
        if (o[key] is JsonValue v && v.TryGetValue<double>(out var x)) return x;
        throw new FineTuneException("FT3014", $"config.json: '{key}' must be a number.", path);
    }

    internal static bool? OptBool(JsonObject o, string key, string path)
    {
        if (o[key] is null) return null;
        if (o[key] is JsonValue v && v.TryGetValue<bool>(out var b)) return b;
        throw new FineTuneException("FT3014", $"config.json: '{key}' must be true or false.", path);
    }
}

/// <summary>The gate activation of a gated MLP.</summary>
public enum GateActivation
{
    /// <summary>SiLU (SwiGLU): llama, mistral, qwen.</summary>
    Silu,
    /// <summary>GELU with the tanh approximation (GeGLU, <c>gelu_pytorch_tanh</c>): Gemma.</summary>
    GeluTanh,
}

/// <summary>Llama 3.1's RoPE frequency scaling (<c>rope_scaling.rope_type = "llama3"</c>).</summary>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings)
{
    /// <summary>Reads the scaling in <paramref name="key"/> (<c>rope_scaling</c> or <c>rope_parameters</c>); null for plain RoPE.</summary>
    internal static Llama3RopeScaling? Parse(JsonNode? node, string key, string path)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw new FineTuneException("FT3014", $"config.json: '{key}' must be an object or null.", path);
        var typeKey = o["rope_type"] is not null ? "rope_type" : "type";
        var type = o[typeKey] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : o[typeKey] is null ? null : throw new FineTuneException("FT3014", $"config.json: '{key}.{typeKey}' must be a string.", path);
        if (type is "default" or null) return null;
        if (type != "llama3")
            throw new FineTuneException("FT3016", $"config.json: '{key}.{typeKey}' = \"{type}\" is not supported; the engine implements plain RoPE (\"default\") and \"llama3\" scaling.", path);
        // transformers requires all four for llama3 scaling; a guessed default would be a different model.
        double Required(string name) => ModelConfig.OptDouble(o, name, path)
            ?? throw new FineTuneException("FT3014", $"config.json: '{key}' of rope_type llama3 has no '{name}'.", path);
        return new Llama3RopeScaling(Required("factor"), Required("low_freq_factor"), Required("high_freq_factor"), (int)Required("original_max_position_embeddings"));
    }
}
