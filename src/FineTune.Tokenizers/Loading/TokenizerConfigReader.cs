using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Tokenizers.Loading;

/// <summary>The parts of transformers' tokenizer_config.json that affect encoding and export.</summary>
internal sealed record TokenizerConfig(string? BosToken, string? EosToken, string? PadToken, string? UnkToken, bool? AddBosToken, bool? AddEosToken);

internal static class TokenizerConfigReader
{
    public static TokenizerConfig Read(string json, string file)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new FineTuneException("FT2005", "tokenizer_config.json is not a JSON object.", file);
            return new TokenizerConfig(
                Token(root, "bos_token", file), Token(root, "eos_token", file), Token(root, "pad_token", file), Token(root, "unk_token", file),
                Flag(root, "add_bos_token", file), Flag(root, "add_eos_token", file));
        }
        catch (JsonException e)
        {
            throw new FineTuneException("FT2005", $"tokenizer_config.json is not valid JSON: {e.Message}", file, (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1);
        }
    }

    /// <summary>A token is written either as a string or as an AddedToken object with "content".</summary>
    private static string? Token(JsonElement root, string name, string file)
    {
        if (!root.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new FineTuneException("FT2005", $"tokenizer_config.json \"{name}\" must be a string or an object with \"content\".", file),
        };
    }

    private static bool? Flag(JsonElement root, string name, string file)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return v.GetBoolean();
        throw new FineTuneException("FT2005", $"tokenizer_config.json \"{name}\" must be true or false.", file);
    }
}
