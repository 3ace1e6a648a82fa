using FineTune.Core.Datasets;

namespace FineTune.Data.Templates;

/// <summary>
/// A chat format, defined once, that gives everything which must agree for a fine-tuned model to
/// work: the training text (with the spans to train on), the stop tokens, the Ollama
/// <c>TEMPLATE</c> and the Jinja <c>chat_template</c> stored in the GGUF. Get one from
/// <see cref="ChatTemplates.Resolve"/>.
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
    /// Renders a conversation into training text. <see cref="FormattedExample.AssistantSpans"/>
    /// covers each assistant reply including its end-of-turn marker (the whole text for raw text);
    /// <see cref="FormattedExample.ContentSpans"/> covers every character that came from message
    /// contents, so the tokenizer treats special-token spellings there as plain text.
    /// </summary>
    public FormattedExample Render(Conversation conversation) => TrainingTextRenderer.Render(_layout, conversation);
}
