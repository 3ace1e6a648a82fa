namespace FineTune.Data.Templates;

/// <summary>
/// The single definition of a chat template: the literal text around each turn. The training
/// renderer, the Ollama TEMPLATE and the Jinja chat_template are all generated from this, so they
/// cannot disagree.
/// </summary>
/// <param name="BosText">Beginning-of-sequence text rendered first in training text (as the model's
/// own Jinja template does), null when the template renders none.</param>
/// <param name="SystemPrefix">Text before the system prompt; null when the format has no system turn
/// and the system prompt is put in front of the first user message instead.</param>
/// <param name="SystemSuffix">Text after the system prompt.</param>
/// <param name="UserPrefix">Text before each user message.</param>
/// <param name="UserSuffix">Text after each user message.</param>
/// <param name="AssistantPrefix">Text before each assistant reply; also the generation prompt.</param>
/// <param name="AssistantEnd">End-of-turn marker right after a reply; part of the training target so
/// the model learns to stop.</param>
/// <param name="AssistantSuffix">Text after the end-of-turn marker (e.g. a newline), not a target.</param>
/// <param name="DefaultSystem">System prompt used when the conversation has none, or null.</param>
/// <param name="SystemSeparator">Between the system prompt and the first user message when the system
/// prompt is merged into it (<paramref name="SystemPrefix"/> null).</param>
/// <param name="EosText">End-of-sequence text appended to raw-text (continued pretraining) examples.</param>
/// <param name="StopTokens">Strings at which generation stops; includes <paramref name="AssistantEnd"/>.</param>
/// <param name="RequiredTokens">Markers the format is built on that must be single tokens of the base
/// model's tokenizer (a model cannot learn to stop on a marker it sees as several plain-text pieces).</param>
/// <param name="UsesModelEos">Generic formats: <see cref="BuiltInTemplates.GenericEos"/> in the end
/// marker, EOS text and stop tokens stands for the base model's own end-of-sequence token.</param>
internal sealed record TemplateLayout(
    string? BosText,
    string? SystemPrefix,
    string SystemSuffix,
    string UserPrefix,
    string UserSuffix,
    string AssistantPrefix,
    string AssistantEnd,
    string AssistantSuffix,
    string? DefaultSystem,
    string SystemSeparator,
    string EosText,
    IReadOnlyList<string> StopTokens,
    IReadOnlyList<string> RequiredTokens,
    bool UsesModelEos = false);
