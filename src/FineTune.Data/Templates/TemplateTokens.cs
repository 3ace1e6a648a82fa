namespace FineTune.Data.Templates;

/// <summary>
/// What a chat template needs to know of the base model's tokenizer: its end-of-sequence token and
/// the texts it encodes as one token of their own (the added tokens of <c>tokenizer.json</c>).
/// </summary>
/// <param name="EosToken">The end-of-sequence token's text (<c>eos_token</c>), or null when the tokenizer names none.</param>
/// <param name="AddedTokens">Texts the tokenizer always encodes as a single token.</param>
/// <param name="Source">The tokenizer file, named in errors.</param>
public sealed record TemplateTokens(string? EosToken, IReadOnlySet<string> AddedTokens, string Source);
