using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Templates;

/// <summary>
/// A chat format, defined once, that gives everything which must agree for a fine-tuned model to
/// work: the training text (with the spans to train on), the stop tokens, the Ollama
/// <c>TEMPLATE</c> and the Jinja <c>chat_template</c> stored in the GGUF. Get one from
/// <see cref="ChatTemplates.Resolve(string, string)"/>.
/// </summary>
public sealed class ChatTemplate
{
    private readonly TemplateLayout _layout;

    internal ChatTemplate(string name, TemplateLayout layout)
    {
        Name = name;
        _layout = layout;
        OllamaTemplate = OllamaTemplateWriter.Write(layout);
        JinjaTemplate = JinjaTemplateWriter.Write(layout);
    }

    /// <summary>The built-in name (e.g. <c>llama-3</c>) or the custom template's path as given.</summary>
    public string Name { get; }

    /// <summary>
    /// Strings at which generation must stop (Ollama <c>PARAMETER stop</c>); the first is the
    /// end-of-turn marker every assistant reply ends with in the training text.
    /// </summary>
    public IReadOnlyList<string> StopTokens => _layout.StopTokens;

    /// <summary>
    /// The Ollama <c>TEMPLATE</c> (Go text/template over <c>.System</c> and <c>.Messages</c>). It
    /// never contains <see cref="BosText"/>: llama.cpp and Ollama add BOS themselves when the GGUF's
    /// <c>tokenizer.ggml.add_bos_token</c> is true.
    /// </summary>
    public string OllamaTemplate { get; }

    /// <summary>
    /// A Jinja <c>chat_template</c> for the GGUF's <c>tokenizer.chat_template</c>, rendering
    /// <c>bos_token</c> first when <see cref="BosText"/> is set (as the models' own templates do).
    /// </summary>
    public string JinjaTemplate { get; }

    /// <summary>
    /// The beginning-of-sequence text every training text starts with (e.g.
    /// <c>&lt;|begin_of_text|&gt;</c>), or null when this format renders none. An exporter should
    /// set <c>add_bos_token</c> true exactly when this is non-null, so inference sees the same BOS.
    /// </summary>
    public string? BosText => _layout.BosText;

    /// <summary>The end-of-sequence text appended to raw-text (continued pretraining) examples.</summary>
    public string EosText => _layout.EosText;

    /// <summary>
    /// The text that follows the prompt so the model starts its reply (the assistant header);
    /// what <c>add_generation_prompt</c> appends.
    /// </summary>
    public string GenerationPrompt => _layout.AssistantPrefix;

    /// <summary>
    /// This template for a base model's tokenizer: a generic format's end marker becomes the model's
    /// own EOS token, and every marker the format is built on must be a single token of the
    /// tokenizer, so the model can learn where a reply ends and stop there.
    /// </summary>
    /// <exception cref="FineTuneException">FT1023 naming the missing tokens and the built-in templates that fit this tokenizer.</exception>
    public ChatTemplate ForTokenizer(TemplateTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var layout = Bind(_layout, tokens);
        var missing = Missing(layout, tokens);
        if (missing.Count == 0) return new ChatTemplate(Name, layout);

        var fitting = ChatTemplates.BuiltInNames.Where(n => Missing(Bind(BuiltInTemplates.All[n], tokens), tokens).Count == 0).ToList();
        var noEos = _layout.UsesModelEos && tokens.EosToken is null
            ? " The tokenizer names no eos_token in tokenizer_config.json, so the generic end marker cannot be the model's own." : "";
        throw new FineTuneException("FT1023",
            $"Chat template '{Name}' is built on {string.Join(", ", missing)}, which the base model's tokenizer does not have as " +
            $"{(missing.Count == 1 ? "a token" : "tokens")}: the model would see {(missing.Count == 1 ? "it" : "them")} as plain-text pieces and not learn where a reply ends.{noEos} " +
            (fitting.Count > 0
                ? $"Use a template made for this model: {string.Join(", ", fitting)}."
                : "Use a custom template file whose markers this tokenizer has, ending replies with </s> (replaced by the model's EOS token)."),
            tokens.Source);
    }

    private static TemplateLayout Bind(TemplateLayout layout, TemplateTokens tokens)
    {
        if (!layout.UsesModelEos || tokens.EosToken is not { Length: > 0 } eos || eos == BuiltInTemplates.GenericEos) return layout;
        string Swap(string s) => s == BuiltInTemplates.GenericEos ? eos : s;
        return layout with
        {
            AssistantEnd = Swap(layout.AssistantEnd),
            EosText = Swap(layout.EosText),
            StopTokens = [.. layout.StopTokens.Select(Swap).Distinct()],
            RequiredTokens = [.. layout.RequiredTokens.Select(Swap).Distinct()],
        };
    }

    private static List<string> Missing(TemplateLayout layout, TemplateTokens tokens) =>
        [.. layout.RequiredTokens.Where(t => !tokens.AddedTokens.Contains(t))];

    /// <summary>
    /// Renders a conversation into training text. <see cref="FormattedExample.AssistantSpans"/>
    /// covers each assistant reply including its end-of-turn marker (the whole text for raw text);
    /// <see cref="FormattedExample.ContentSpans"/> covers every character that came from message
    /// contents, so the tokenizer treats special-token spellings there as plain text.
    /// </summary>
    public FormattedExample Render(Conversation conversation) => TrainingTextRenderer.Render(_layout, conversation);
}
