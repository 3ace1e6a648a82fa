using FineTune.Core.Diagnostics;

namespace FineTune.Data.Templates;

/// <summary>Finds chat templates: built-in formats by name, custom formats from files.</summary>
public static class ChatTemplates
{
    /// <summary>The built-in template names, e.g. <c>llama-3</c>, <c>chatml</c>, <c>qwen-2.5</c>.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } =
        ["llama-3", "chatml", "qwen-2.5", "mistral", "gemma", "phi-3", "alpaca", "vicuna", "zephyr"];

    /// <summary>
    /// Resolves a <c>ChatTemplate</c> item: a built-in name (case-insensitive), or else a file path
    /// (relative to <paramref name="baseDirectory"/>) holding a custom template with <c>{SYSTEM}</c>
    /// (optional), <c>{INPUT}</c> and <c>{OUTPUT}</c> placeholders.
    /// </summary>
    /// <remarks>
    /// Not bound to a tokenizer: a generic format's end marker reads as <c>&lt;/s&gt;</c> and no
    /// marker is checked. For text-only tools (formatting without a model); anything that trains or
    /// serves a model uses <see cref="Resolve(string, string, TemplateTokens)"/>.
    /// </remarks>
    /// <exception cref="FineTuneException">FT1020 when neither a built-in nor an existing file;
    /// FT1021/FT1022 for a malformed custom template.</exception>
    public static ChatTemplate Resolve(string nameOrPath, string baseDirectory) => ResolveUnbound(nameOrPath, baseDirectory);

    /// <summary>
    /// Resolves a <c>ChatTemplate</c> item for the base model whose tokenizer is <paramref name="tokens"/>
    /// (see <see cref="ChatTemplate.ForTokenizer"/>); what every step that trains or serves a model uses.
    /// </summary>
    /// <exception cref="FineTuneException">As <see cref="Resolve(string, string)"/>, and FT1023 when the
    /// template's markers are not tokens of that tokenizer.</exception>
    public static ChatTemplate Resolve(string nameOrPath, string baseDirectory, TemplateTokens tokens) =>
        ResolveUnbound(nameOrPath, baseDirectory).ForTokenizer(tokens);

    private static ChatTemplate ResolveUnbound(string nameOrPath, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        if (BuiltInTemplates.All.TryGetValue(nameOrPath.Trim(), out var layout))
            return new ChatTemplate(BuiltInNames.First(n => n.Equals(nameOrPath.Trim(), StringComparison.OrdinalIgnoreCase)), layout);

        var path = Path.GetFullPath(nameOrPath, baseDirectory);
        if (!File.Exists(path))
            throw new FineTuneException("FT1020",
                $"Chat template '{nameOrPath}' is neither a built-in template ({string.Join(", ", BuiltInNames)}) nor an existing file ({path}).");
        return new ChatTemplate(nameOrPath, CustomTemplateParser.Parse(File.ReadAllText(path), path));
    }
}
