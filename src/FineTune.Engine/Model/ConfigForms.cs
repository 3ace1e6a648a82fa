using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Model;

/// <summary>
/// The shapes config.json comes in: transformers 4 (<c>rope_theta</c>, <c>rope_scaling</c>,
/// <c>torch_dtype</c> at the top) and transformers 5 (<c>rope_parameters</c> holding
/// <c>rope_type</c>, <c>rope_theta</c> and the scaling; <c>dtype</c>), the language model nested
/// in <c>text_config</c> or not. Both forms of one model read to the same <see cref="ModelConfig"/>;
/// a file that states a value twice with different numbers is refused instead of picking one.
/// </summary>
internal static class ConfigForms
{
    private static readonly string[] WrapperOnlyKeys = ["text_config", "vision_config", "audio_config", "model_type", "architectures"];

    /// <summary>The language model's keys: <c>text_config</c>'s, with top-level keys it does not repeat.</summary>
    public static JsonObject LanguageModel(JsonObject root, string path)
    {
        if (root["text_config"] is null) return root;
        if (root["text_config"] is not JsonObject text)
            throw new FineTuneException("FT3014", "config.json: 'text_config' must be an object.", path);
        var merged = (JsonObject)text.DeepClone();
        foreach (var (key, value) in root)
            if (!WrapperOnlyKeys.Contains(key) && !merged.ContainsKey(key)) merged[key] = value?.DeepClone();
        if (merged["model_type"] is null)
            throw new FineTuneException("FT3014", "config.json: 'text_config' has no 'model_type'.", path);
        return merged;
    }

    /// <summary><c>dtype</c> (transformers 5) or <c>torch_dtype</c> (4); both present and different is an error.</summary>
    public static string? DType(JsonObject o, string path)
    {
        string? Read(string key) => o[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => throw new FineTuneException("FT3014", $"config.json: '{key}' must be a string such as \"bfloat16\".", path),
        };
        var (v5, v4) = (Read("dtype"), Read("torch_dtype"));
        if (v5 is not null && v4 is not null && v5 != v4)
            throw Conflict("dtype", v5, "torch_dtype", v4, path);
        return v5 ?? v4;
    }

    /// <summary>RoPE base and scaling from <c>rope_parameters</c> and/or <c>rope_theta</c> + <c>rope_scaling</c>.</summary>
    public static (double Theta, Llama3RopeScaling? Scaling) Rope(JsonObject o, string path)
    {
        var theta4 = ModelConfig.OptDouble(o, "rope_theta", path);
        var scaling4 = Llama3RopeScaling.Parse(o["rope_scaling"], "rope_scaling", path);
        if (o["rope_parameters"] is null) return (theta4 ?? 10000, scaling4);

        if (o["rope_parameters"] is not JsonObject p)
            throw new FineTuneException("FT3014", "config.json: 'rope_parameters' must be an object.", path);
        // transformers 5 keys hybrid models' RoPE by layer type ({"full_attention": {...}, "sliding_attention": {...}}).
        if (p.Any(kv => kv.Value is JsonObject))
            throw new FineTuneException("FT3040",
                $"config.json: 'rope_parameters' differs by layer type ({string.Join(", ", p.Select(kv => kv.Key))}); the engine applies one RoPE to every layer.", path);
        var theta5 = ModelConfig.OptDouble(p, "rope_theta", path);
        var scaling5 = Llama3RopeScaling.Parse(p, "rope_parameters", path);
        if (ModelConfig.OptDouble(p, "partial_rotary_factor", path) is { } partial && partial != 1)
            throw UnsupportedConfig.Error("rope_parameters.partial_rotary_factor", partial.ToString(System.Globalization.CultureInfo.InvariantCulture), "rotary embeddings on part of each head", path);
        if (theta4 is { } a && theta5 is { } b && a != b)
            throw Conflict("rope_parameters.rope_theta", b.ToString(System.Globalization.CultureInfo.InvariantCulture), "rope_theta", a.ToString(System.Globalization.CultureInfo.InvariantCulture), path);
        if (o["rope_scaling"] is not null && scaling4 != scaling5)
            throw Conflict("rope_parameters", p.ToJsonString(), "rope_scaling", o["rope_scaling"]!.ToJsonString(), path);
        return (theta5 ?? theta4 ?? 10000, scaling5);
    }

    private static FineTuneException Conflict(string key, string value, string otherKey, string otherValue, string path) =>
        new("FT3041", $"config.json states '{key}' = {value} and '{otherKey}' = {otherValue}; they disagree, so which one the model was trained with is unknown. Keep one (transformers 5 writes '{key.Split('.')[0]}').", path);
}
