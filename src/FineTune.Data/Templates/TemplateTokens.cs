namespace FineTune.Data.Templates;

/// <summary>
/// What a chat template needs to know of the base model: its tokenizer's end-of-sequence token and
/// the texts it encodes as one token of their own (the added tokens of <c>tokenizer.json</c>), and
/// for the model's own Jinja template also its BOS token, the template itself and the extra EOS
/// tokens of <c>generation_config.json</c>.
/// </summary>
/// <param name="EosToken">The end-of-sequence token's text (<c>eos_token</c>), or null when the tokenizer names none.</param>
/// <param name="AddedTokens">Texts the tokenizer always encodes as a single token.</param>
/// <param name="Source">The tokenizer file, named in errors.</param>
/// <param name="BosToken">The beginning-of-sequence token's text (<c>bos_token</c>), or null.</param>
/// <param name="ModelTemplate">The base model's own chat template, or null when it has none.</param>
/// <param name="GenerationStops">The texts of every <c>eos_token_id</c> in <c>generation_config.json</c>: where generation stops.</param>
public sealed record TemplateTokens(string? EosToken, IReadOnlySet<string> AddedTokens, string Source,
    string? BosToken = null, ModelTemplateSource? ModelTemplate = null, IReadOnlyList<string>? GenerationStops = null);
