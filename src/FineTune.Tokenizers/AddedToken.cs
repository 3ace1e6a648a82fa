namespace FineTune.Tokenizers;

/// <summary>
/// An entry of tokenizer.json's <c>added_tokens</c>: text matched as a whole before normalization
/// and BPE (e.g. <c>&lt;|eot_id|&gt;</c>).
/// </summary>
/// <param name="Id">Token id.</param>
/// <param name="Content">The exact text of the token.</param>
/// <param name="Special">True for control tokens (skipped by <c>Decode(..., skipSpecialTokens: true)</c>).</param>
/// <param name="LStrip">Whitespace to the token's left is absorbed into it.</param>
/// <param name="RStrip">Whitespace to the token's right is absorbed into it.</param>
/// <param name="Normalized">The token is matched in normalized text rather than in the raw input.</param>
/// <param name="SingleWord">The token only matches when not inside a word.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool Normalized = false, bool SingleWord = false);
