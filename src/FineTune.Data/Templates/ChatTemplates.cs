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
    public static ChatTemplate Resolve(string nameOrPath, string baseDirectory, TemplateTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        ArgumentNullException.ThrowIfNull(tokens);
        if (IsModel(nameOrPath))
        {
            var source = tokens.ModelTemplate ?? throw new FineTuneException(ChatTemplateErrors.NoModelTemplate,
                "The base model has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja), so there is none to use by default. " +
                $"Add a ChatTemplate item naming a built-in template ({string.Join(", ", BuiltInNames)}) or a template file.", tokens.Source);
            return new ChatTemplate(ModelTemplateName, Jinja(source, tokens));
        }
        if (IsJinjaFile(nameOrPath))
        {
            var path = Path.GetFullPath(nameOrPath, baseDirectory);
            if (!File.Exists(path)) throw new FineTuneException("FT1020", $"Chat template file '{nameOrPath}' does not exist ({path}).");
            return new ChatTemplate(nameOrPath, Jinja(new ModelTemplateSource(File.ReadAllText(path), new Jinja.JinjaSource(path, IsTemplateFile: true)), tokens));
        }
        return ResolveUnbound(nameOrPath, baseDirectory).ForTokenizer(tokens);
    }

    /// <summary>The name a project uses for the base model's own template (also what no <c>ChatTemplate</c> item means).</summary>
    public const string ModelTemplateName = "model";

    /// <summary>True for an empty <c>ChatTemplate</c> or <c>model</c>: the base model's own template.</summary>
    public static bool IsModel(string nameOrPath) =>
        string.IsNullOrWhiteSpace(nameOrPath) || nameOrPath.Trim().Equals(ModelTemplateName, StringComparison.OrdinalIgnoreCase);

    private static bool IsJinjaFile(string nameOrPath) => nameOrPath.Trim().EndsWith(".jinja", StringComparison.OrdinalIgnoreCase);

    private static JinjaChatFormat Jinja(ModelTemplateSource source, TemplateTokens tokens) =>
        new(source, tokens.BosToken, tokens.EosToken, tokens.AddedTokens, tokens.GenerationStops ?? []);

    private static ChatTemplate ResolveUnbound(string nameOrPath, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        if (IsModel(nameOrPath) || IsJinjaFile(nameOrPath))
            throw new FineTuneException(ChatTemplateErrors.NoModelTemplate,
                $"Chat template '{nameOrPath}' is a Jinja template, which needs the base model's tokenizer: pass --tokenizer <the base model folder>.");
        if (BuiltInTemplates.All.TryGetValue(nameOrPath.Trim(), out var layout))
            return new ChatTemplate(BuiltInNames.First(n => n.Equals(nameOrPath.Trim(), StringComparison.OrdinalIgnoreCase)), layout);

        var path = Path.GetFullPath(nameOrPath, baseDirectory);
        if (!File.Exists(path))
            throw new FineTuneException("FT1020",
                $"Chat template '{nameOrPath}' is neither a built-in template ({string.Join(", ", BuiltInNames)}) nor an existing file ({path}).");
        return new ChatTemplate(nameOrPath, CustomTemplateParser.Parse(File.ReadAllText(path), path));
    }
}
