using System.Text.Json;
using FineTune.Cli.Samples;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Quality;

/// <summary>
/// The trained model's greedy replies that the samples step already made (its <c>after</c> replies in
/// <c>samples.json</c>), so the gate does not generate them a second time. A reply is taken only for
/// the same prompt text (the rendered prompt, template and system prompt included) under the same
/// token limit; anything else — another split, fewer samples, an older file — is generated anew.
/// The build keys the gate on samples.json, so a changed reply re-runs the gate.
/// </summary>
public static class SampleReplies
{
    /// <summary>For each of <paramref name="prompts"/>, the samples step's reply of the trained model, or null.</summary>
    public static GateReply?[] Match(string path, IReadOnlyList<HeldOutPrompt> prompts, int maxTokens)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllBytes(path)).RootElement; }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new FineTuneException("FT7005", $"samples.json cannot be read: {e.Message}", path);
        }
        var result = new GateReply?[prompts.Count];
        if (root.ValueKind != JsonValueKind.Array) return result;
        var byPrompt = new Dictionary<string, GateReply>(StringComparer.Ordinal);
        foreach (var item in root.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object
                || String(item, "prompt_text") is not { } prompt || String(item, "after") is not { } text || String(item, "after_end") is not { } end
                || !item.TryGetProperty("max_tokens", out var limit) || !limit.TryGetInt32(out var n) || n != maxTokens)
                continue;
            byPrompt.TryAdd(prompt, new GateReply(text, end, end == SampleSet.StopTokenEnd));
        }
        for (var i = 0; i < prompts.Count; i++)
            result[i] = byPrompt.GetValueOrDefault(prompts[i].Text);
        return result;
    }

    private static string? String(JsonElement item, string key) =>
        item.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
