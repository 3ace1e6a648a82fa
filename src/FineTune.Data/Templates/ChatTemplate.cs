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
    private readonly TemplateLayout _layout = null!;
    private readonly JinjaChatFormat? _jinja;
    private readonly Lazy<OllamaTemplateDerivation>? _ollama;

    internal ChatTemplate(string name, TemplateLayout layout)
    {
        Name = name;
        _layout = layout;
        _ollamaTemplate = OllamaTemplateWriter.Write(layout);
        JinjaTemplate = JinjaTemplateWriter.Write(layout);
    }

    internal ChatTemplate(string name, JinjaChatFormat jinja)
    {
        Name = name;
        _jinja = jinja;
        JinjaTemplate = jinja.Source.Template;
        _ollama = new Lazy<OllamaTemplateDerivation>(() => OllamaTemplateDerivation.Derive(jinja));
    }

    private readonly string? _ollamaTemplate;

    /// <summary>True when this is a Jinja template (the base model's own or a .jinja file) rather than a built-in format.</summary>
    public bool IsJinja => _jinja is not null;

    /// <summary>
    /// What the Ollama TEMPLATE reproduces of a Jinja template (plain system/user/assistant chat and
    /// the generation prompt) and what it leaves out (tools, thinking blocks), for the build log; empty for built-ins.
    /// </summary>
    public IReadOnlyList<string> OllamaCoverage => _ollama?.Value.Coverage ?? [];

    /// <summary>The built-in name (e.g. <c>llama-3</c>) or the custom template's path as given.</summary>
    public string Name { get; }

    /// <summary>
    /// Strings at which generation must stop (Ollama <c>PARAMETER stop</c>); the first is the
    /// end-of-turn marker every assistant reply ends with in the training text.
    /// </summary>
    public IReadOnlyList<string> StopTokens => _jinja?.StopTokens ?? _layout.StopTokens;

    /// <summary>
    /// The Ollama <c>TEMPLATE</c> (Go text/template over <c>.System</c> and <c>.Messages</c>). It
    /// never contains <see cref="BosText"/>: llama.cpp and Ollama add BOS themselves when the GGUF's
    /// <c>tokenizer.ggml.add_bos_token</c> is true.
    /// </summary>
    /// <exception cref="FineTuneException">FT1048 when no Go template reproduces a Jinja template's plain chat.</exception>
    public string OllamaTemplate => _ollama?.Value.Template ?? _ollamaTemplate!;

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
    public string? BosText => _jinja is not null ? _jinja.BosText : _layout.BosText;

    /// <summary>The end-of-sequence text appended to raw-text (continued pretraining) examples.</summary>
    public string EosText => _jinja?.EosText ?? _layout.EosText;

    /// <summary>
    /// The text that follows the prompt so the model starts its reply (the assistant header);
    /// what <c>add_generation_prompt</c> appends.
    /// </summary>
    public string GenerationPrompt => _jinja?.GenerationPrompt ?? _layout.AssistantPrefix;

    /// <summary>
    /// This template for a base model's tokenizer: a generic format's end marker becomes the model's
    /// own EOS token, and every marker the format is built on must be a single token of the
    /// tokenizer, so the model can learn where a reply ends and stop there.
    /// </summary>
    /// <exception cref="FineTuneException">FT1023 naming the missing tokens and the built-in templates that fit this tokenizer.</exception>
    public ChatTemplate ForTokenizer(TemplateTokens tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        // A Jinja template is built with the model's tokens already (ChatTemplates.Resolve).
        if (_jinja is not null) return this;
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
    public FormattedExample Render(Conversation conversation) => Render(conversation, lossOnReplies: true);

    /// <summary>
    /// Renders training text; with <paramref name="lossOnReplies"/> false the whole text is the loss
    /// span (<c>train_on_responses_only: false</c>), which works even for a template whose replies
    /// cannot be located. The replies stay in <see cref="FormattedExample.AssistantSpans"/> either
    /// way (where they can be located), so held-out prompts are cut at the same place.
    /// </summary>
    public FormattedExample Render(Conversation conversation, bool lossOnReplies)
    {
        if (_jinja is not null) return _jinja.Render(conversation, lossOnReplies);
        var example = TrainingTextRenderer.Render(_layout, conversation);
        return lossOnReplies || conversation.IsRawText ? example : example.WithLossOnWholeText();
    }

    /// <summary>
    /// The prompt an inference server sends for <paramref name="conversation"/> (ending in a user
    /// message): the rendering with the generation prompt, and the content spans.
    /// </summary>
    public FormattedExample RenderPrompt(Conversation conversation)
    {
        if (_jinja is not null) return _jinja.RenderPrompt(conversation);
        var rendered = TrainingTextRenderer.Render(_layout, conversation);
        return rendered with { Text = rendered.Text + GenerationPrompt, AssistantSpans = [] };
    }
}
