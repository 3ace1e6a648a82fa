using System.Globalization;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Model;

/// <summary>
/// config.json values that change the model's math and that the engine does not implement. A model
/// that sets one is refused with the key named: training it as if the value were absent would
/// compute a different function from the one the model was trained as.
/// </summary>
internal static class UnsupportedConfig
{
    public static void Check(JsonObject o, string type, string path)
    {
        if (o["hidden_act"] is JsonValue act && act.TryGetValue<string>(out var activation) && activation != "silu")
            throw Error("hidden_act", $"\"{activation}\"", "an MLP activation other than SiLU", path);
        if (IsTrue(o, "mlp_bias"))
            throw Error("mlp_bias", "true", "biases in the MLP projections", path);
        foreach (var key in new[] { "attn_logit_softcapping", "final_logit_softcapping" })
            if (Number(o, key) is { } cap && cap != 0)
                throw Error(key, Format(cap), "logit soft-capping", path);
        if (Number(o, "attention_dropout") is { } dropout && dropout != 0)
            throw Error("attention_dropout", Format(dropout), "dropout on attention probabilities", path);
        if (Number(o, "partial_rotary_factor") is { } partial && partial != 1)
            throw Error("partial_rotary_factor", Format(partial), "rotary embeddings on part of each head", path);
        if (o["quantization_config"] is JsonObject quantization)
            throw Error("quantization_config", quantization["quant_method"]?.ToJsonString() ?? "{...}",
                "pre-quantized weights (use the model's unquantized bfloat16/float16 release)", path);
        SlidingWindow(o, type, path);
        if (o["layer_types"] is JsonArray layers && layers.FirstOrDefault(l => l?.GetValue<string>() != "full_attention") is { } other)
            throw Error("layer_types", $"[..., \"{other}\", ...]", "layers other than full attention", path);
    }

    /// <summary>qwen2/qwen3 ignore <c>sliding_window</c> unless <c>use_sliding_window</c>; mistral and llama use it whenever set.</summary>
    private static void SlidingWindow(JsonObject o, string type, string path)
    {
        if (IsTrue(o, "use_sliding_window"))
            throw Error("use_sliding_window", "true", "sliding-window attention", path);
        if (type is "qwen2" or "qwen3") return;
        if (Number(o, "sliding_window") is { } window)
            throw Error("sliding_window", Format(window), "sliding-window attention (positions further back than the window are not attended to)", path);
    }

    public static FineTuneException Error(string key, string value, string what, string path) =>
        new("FT3040", $"config.json sets '{key}' = {value}: {what}, which the engine does not implement; training would compute a different model. Use a base model without it.", path);

    private static bool IsTrue(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    private static double? Number(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<double>(out var x) ? x : null;

    private static string Format(double x) => x.ToString(CultureInfo.InvariantCulture);
}
