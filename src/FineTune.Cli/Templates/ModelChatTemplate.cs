using System.Text.Json;
using FineTune.Data.Templates;
using FineTune.Tokenizers;

namespace FineTune.Cli.Templates;

/// <summary>
/// Turns a <c>ChatTemplate</c> item into the template a model is trained and served with: the base
/// model's own Jinja template for <c>model</c> (what no item means), or a built-in / file bound to
/// the base model's tokenizer (generic end markers become its EOS token) and checked against it
/// (FT1023). Every command that formats, exports, writes a Modelfile for, samples or chats with a
/// model resolves its template here, so training text, GGUF, Modelfile and chat cannot disagree.
/// </summary>
internal static class ModelChatTemplate
{
    /// <summary>Resolves <paramref name="nameOrPath"/> for the tokenizer at <paramref name="tokenizerPath"/> (a tokenizer.json or a model folder).</summary>
    public static ChatTemplate Resolve(string nameOrPath, string tokenizerPath) =>
        Resolve(nameOrPath, Tokenizer.Load(tokenizerPath), tokenizerPath);

    /// <summary>Resolves <paramref name="nameOrPath"/> for a loaded tokenizer; <paramref name="tokenizerPath"/> is named in errors.</summary>
    public static ChatTemplate Resolve(string nameOrPath, Tokenizer tokenizer, string tokenizerPath) =>
        ChatTemplates.Resolve(nameOrPath, Directory.GetCurrentDirectory(), Tokens(tokenizer, tokenizerPath));

    /// <summary>The base model folder of <paramref name="tokenizerPath"/> (a folder, or the folder of a tokenizer.json).</summary>
    public static string ModelDirectory(string tokenizerPath) =>
        Directory.Exists(tokenizerPath) ? tokenizerPath : Path.GetDirectoryName(Path.GetFullPath(tokenizerPath))!;

    /// <summary>What a template needs of <paramref name="tokenizer"/> and its model folder.</summary>
    public static TemplateTokens Tokens(Tokenizer tokenizer, string tokenizerPath)
    {
        var source = Directory.Exists(tokenizerPath) ? Path.Combine(tokenizerPath, "tokenizer.json") : tokenizerPath;
        var eos = tokenizer.EosTokenId is { } id ? tokenizer.IdToToken(id) : null;
        var bos = tokenizer.BosTokenId is { } b ? tokenizer.IdToToken(b) : null;
        var modelDir = ModelDirectory(tokenizerPath);
        return new TemplateTokens(eos, tokenizer.AddedTokens.Select(t => t.Content).ToHashSet(StringComparer.Ordinal), Path.GetFullPath(source),
            bos, ModelTemplateSource.Find(modelDir), GenerationStops(tokenizer, modelDir));
    }

    /// <summary>The token texts of every <c>eos_token_id</c> in generation_config.json (a number or a list): where generation stops.</summary>
    private static IReadOnlyList<string> GenerationStops(Tokenizer tokenizer, string modelDir)
    {
        var file = Path.Combine(modelDir, "generation_config.json");
        if (!File.Exists(file)) return [];
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            if (!doc.RootElement.TryGetProperty("eos_token_id", out var ids)) return [];
            var list = ids.ValueKind == JsonValueKind.Array ? ids.EnumerateArray().ToList() : [ids];
            return [.. list.Where(e => e.ValueKind == JsonValueKind.Number).Select(e => tokenizer.IdToToken(e.GetInt32())).OfType<string>()];
        }
        catch (JsonException)
        {
            // A malformed generation_config.json is reported where it is read for training; here it adds no stops.
            return [];
        }
    }
}
