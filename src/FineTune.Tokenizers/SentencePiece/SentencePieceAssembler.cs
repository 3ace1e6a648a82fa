using FineTune.Tokenizers.Loading;
using FineTune.Tokenizers.Models;
using FineTune.Tokenizers.Normalization;
using FineTune.Tokenizers.PostProcessing;

namespace FineTune.Tokenizers.SentencePiece;

/// <summary>
/// Assembles a tokenizer from a <see cref="SentencePieceVocabulary"/> with llama.cpp's SentencePiece
/// rules, on the same BPE engine as tokenizer.json models: the scores become a merge table (every
/// pair of pieces whose concatenation is a piece, ranked by that piece's score, equal scores sharing
/// a rank so the leftmost merges first), spaces become <c>▁</c> with one prepended to each stretch of
/// text when the vocabulary adds a space prefix, characters without a piece fall back to
/// <c>&lt;0xNN&gt;</c> bytes, and control, user-defined and unknown tokens are cut out of the text
/// first, longest first.
/// </summary>
internal static class SentencePieceAssembler
{
    private const string Space = "\u2581";

    // llama.cpp (the build tests run against, as recent Ollama builds) makes these control tokens, ending
    // generation, whatever type the file gives them: a user-defined "</s>" (an HTML tag in Gemma's
    // vocabulary) is then neither cut out of plain text nor printed when special tokens are skipped.
    private static readonly HashSet<string> EndOfGeneration = new(StringComparer.Ordinal)
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
        "<eos>", "<turn|>", "<|tool_response>",
    };

    public static TokenizerParts Assemble(SentencePieceVocabulary v)
    {
        var n = v.Tokens.Count;
        if (v.Scores.Count != n || v.Types.Count != n)
            throw new ArgumentException($"{n} tokens but {v.Scores.Count} scores and {v.Types.Count} types.", nameof(v));

        var types = new SentencePieceTokenType[n];
        var vocab = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (var id = 0; id < n; id++)
        {
            types[id] = EndOfGeneration.Contains(v.Tokens[id]) ? SentencePieceTokenType.Control : v.Types[id];
            vocab[v.Tokens[id]] = id; // a repeated text names its last id, as in llama.cpp
        }
        // ... except "</s>" beside Gemma 4's "<|tool_response>", which llama.cpp turns back into a normal token.
        if (vocab.TryGetValue("<|tool_response>", out _) && vocab.TryGetValue("</s>", out var closing))
            types[closing] = SentencePieceTokenType.Normal;

        var added = new List<AddedToken>();
        for (var id = 0; id < n; id++)
            if (types[id] is SentencePieceTokenType.Control or SentencePieceTokenType.UserDefined or SentencePieceTokenType.Unknown)
                added.Add(new AddedToken(id, v.Tokens[id], Special: types[id] != SentencePieceTokenType.UserDefined));

        var options = new BpeOptions(ByteLevel: false, ByteFallback: true, UnkId: v.UnkTokenId, FuseUnk: false, IgnoreMerges: false,
            ContinuingSubwordPrefix: "", EndOfWordSuffix: "");
        var replace = new ReplaceNormalizer(" ", null, Space);
        int[]? Ids(bool add, int? id) => add && id is { } x ? [x] : [];
        string? Text(int? id) => id is { } x && (uint)x < (uint)n ? v.Tokens[x] : null;
        var symbols = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        var merges = Merges(v, vocab, symbols);
        return new TokenizerParts
        {
            Model = BpeModel.FromPairs(symbols, merges, options, firstPlaceholderId: n),
            Vocab = vocab,
            AddedTokens = added,
            LongestFirstAddedTokens = true,
            Normalizer = v.AddSpacePrefix ? new SequenceNormalizer([new PrependNormalizer(Space), replace]) : replace,
            PostProcessor = new TemplatePostProcessor([Ids(v.AddBosToken, v.BosTokenId), null, Ids(v.AddEosToken, v.EosTokenId)]),
            PieceDecoder = new SentencePieceDecoder(v, types),
            Kind = TokenizerModelKind.SentencePieceBpe,
            BosToken = Text(v.BosTokenId),
            EosToken = Text(v.EosTokenId),
            PadToken = Text(v.PadTokenId),
            UnkToken = Text(v.UnkTokenId),
            AddBosToken = v.AddBosToken,
            AddEosToken = v.AddEosToken,
        };
    }

    /// <summary>
    /// llama.cpp merges the adjacent pair whose concatenation is the highest-scoring piece, the leftmost
    /// of equals first: the same as BPE with every such pair ranked by the piece's score. A pair's sides
    /// are pieces or single characters (what llama.cpp starts from); a character that is no piece gets a
    /// placeholder id in <paramref name="symbols"/> (from the vocabulary's size on) so it can still merge.
    /// </summary>
    private static Dictionary<long, long> Merges(SentencePieceVocabulary v, Dictionary<string, int> vocab, Dictionary<string, int> symbols)
    {
        var ranks = v.Scores.Distinct().OrderByDescending(s => s).Select((score, rank) => (score, rank)).ToDictionary(x => x.score, x => (long)x.rank);
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        var merges = new Dictionary<long, long>();
        int? Side(ReadOnlySpan<char> text)
        {
            if (lookup.TryGetValue(text, out var id)) return id;
            if (text.Length > 2 || (text.Length == 2 && !char.IsSurrogatePair(text[0], text[1]))) return null;
            var key = text.ToString();
            if (!symbols.TryGetValue(key, out id)) symbols[key] = id = symbols.Count + v.Tokens.Count - vocab.Count;
            return id;
        }
        foreach (var (text, id) in vocab)
        {
            for (var cut = 1; cut < text.Length; cut++)
            {
                if (char.IsLowSurrogate(text[cut]) && char.IsHighSurrogate(text[cut - 1])) continue;
                if (Side(text.AsSpan(0, cut)) is { } left && Side(text.AsSpan(cut)) is { } right)
                    merges[BpeModel.PairKey(left, right)] = (ranks[v.Scores[id]] << 32) | (uint)id;
            }
        }
        return merges;
    }
}
