namespace FineTune.Tokenizers.SentencePiece;

/// <summary>What a SentencePiece token is, as GGUF's <c>tokenizer.ggml.token_type</c> numbers them.</summary>
public enum SentencePieceTokenType
{
    /// <summary>No type given; decodes to nothing.</summary>
    Undefined = 0,
    /// <summary>A piece of text, <c>▁</c> standing for a space.</summary>
    Normal = 1,
    /// <summary>The unknown token.</summary>
    Unknown = 2,
    /// <summary>A control token such as <c>&lt;s&gt;</c> or <c>&lt;start_of_turn&gt;</c>.</summary>
    Control = 3,
    /// <summary>A token matched as a whole in the text before anything else, printed as written.</summary>
    UserDefined = 4,
    /// <summary>A reserved id; decodes to nothing.</summary>
    Unused = 5,
    /// <summary>A <c>&lt;0xNN&gt;</c> byte-fallback token.</summary>
    Byte = 6,
}

/// <summary>
/// A SentencePiece vocabulary as GGUF stores it (<c>tokenizer.ggml.model</c> <c>llama</c>): the
/// pieces with their scores and types instead of a merge list, the special ids and flags. Enough to
/// tokenize and detokenize exactly as llama.cpp does with the same file.
/// </summary>
/// <param name="Tokens">Piece text by id.</param>
/// <param name="Scores">Score by id: of two pairs that can merge, the one making the higher-scored piece merges first.</param>
/// <param name="Types">Type by id.</param>
/// <param name="BosTokenId">Beginning-of-sequence id.</param>
/// <param name="EosTokenId">End-of-sequence id.</param>
/// <param name="UnkTokenId">Unknown-token id.</param>
/// <param name="PadTokenId">Padding id.</param>
/// <param name="AddBosToken">Whether a sequence starts with the BOS token.</param>
/// <param name="AddEosToken">Whether a sequence ends with the EOS token.</param>
/// <param name="AddSpacePrefix">Whether text after the start or a special token gets a leading space (Llama 2: yes, Gemma: no).</param>
public sealed record SentencePieceVocabulary(
    IReadOnlyList<string> Tokens,
    IReadOnlyList<float> Scores,
    IReadOnlyList<SentencePieceTokenType> Types,
    int? BosTokenId,
    int? EosTokenId,
    int? UnkTokenId,
    int? PadTokenId,
    bool AddBosToken,
    bool AddEosToken,
    bool AddSpacePrefix);
