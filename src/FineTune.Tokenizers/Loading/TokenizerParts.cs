using FineTune.Tokenizers.Decoding;
using FineTune.Tokenizers.Models;
using FineTune.Tokenizers.Normalization;
using FineTune.Tokenizers.PostProcessing;
using FineTune.Tokenizers.PreTokenization;
using FineTune.Tokenizers.SentencePiece;

namespace FineTune.Tokenizers.Loading;

/// <summary>Everything read from tokenizer.json and tokenizer_config.json, before the tokenizer is assembled.</summary>
internal sealed class TokenizerParts
{
    public required BpeModel Model { get; init; }
    public required Dictionary<string, int> Vocab { get; init; }
    public required IReadOnlyList<AddedToken> AddedTokens { get; init; }
    public Normalizer? Normalizer { get; init; }
    public PreTokenizer? PreTokenizer { get; init; }
    public PostProcessor? PostProcessor { get; init; }
    public Decoder? Decoder { get; init; }
    /// <summary>Decodes ids directly (a GGUF SentencePiece vocabulary, whose decoding depends on token types); replaces <see cref="Decoder"/>.</summary>
    public SentencePieceDecoder? PieceDecoder { get; init; }
    /// <summary>Match added tokens longest first (llama.cpp) rather than leftmost-longest (Hugging Face).</summary>
    public bool LongestFirstAddedTokens { get; init; }
    public required TokenizerModelKind Kind { get; init; }
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    public string? PadToken { get; init; }
    public string? UnkToken { get; init; }
    public bool? AddBosToken { get; init; }
    public bool? AddEosToken { get; init; }
}
