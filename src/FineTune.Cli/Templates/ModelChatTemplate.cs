using FineTune.Data.Templates;
using FineTune.Tokenizers;

namespace FineTune.Cli.Templates;

/// <summary>
/// Turns a <c>ChatTemplate</c> item into the template a model is trained and served with: bound to
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

    /// <summary>What a template needs of <paramref name="tokenizer"/>.</summary>
    public static TemplateTokens Tokens(Tokenizer tokenizer, string tokenizerPath)
    {
        var source = Directory.Exists(tokenizerPath) ? Path.Combine(tokenizerPath, "tokenizer.json") : tokenizerPath;
        var eos = tokenizer.EosTokenId is { } id ? tokenizer.IdToToken(id) : null;
        return new TemplateTokens(eos, tokenizer.AddedTokens.Select(t => t.Content).ToHashSet(StringComparer.Ordinal), Path.GetFullPath(source));
    }
}
