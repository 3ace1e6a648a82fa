using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Tokenizers.AddedTokens;
using FineTune.Tokenizers.Decoding;
using FineTune.Tokenizers.Loading;
using FineTune.Tokenizers.Models;
using FineTune.Tokenizers.Normalization;
using FineTune.Tokenizers.PostProcessing;
using FineTune.Tokenizers.PreTokenization;
using FineTune.Tokenizers.SentencePiece;

namespace FineTune.Tokenizers;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> BPE tokenizer (byte-level like Llama 3 and Qwen, or
/// SentencePiece-style with byte fallback like Llama 2) that produces the same ids as the
/// <c>tokenizers</c> library. Thread-safe: one instance can encode from several threads.
/// </summary>
/// <remarks>
/// Pipeline, as in Hugging Face: added tokens are cut out of the raw text, each remaining section
/// is normalized, pre-tokenized and byte-pair encoded, and the post-processor adds special tokens
/// when asked. The <c>truncation</c> and <c>padding</c> sections of tokenizer.json are not applied:
/// callers truncate explicitly (the tokenize step does, with a warning).
/// </remarks>
public sealed class Tokenizer
{
    private readonly BpeModel _model;
    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly PostProcessor? _postProcessor;
    private readonly Decoder? _decoder;
    private readonly SentencePieceDecoder? _pieceDecoder;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly bool[] _isSpecial;
    private readonly AddedTokenMatcher _rawMatcher;
    private readonly AddedTokenMatcher _normalizedMatcher;
    private readonly AddedTokenMatcher? _plainMatcher;

    private Tokenizer(TokenizerParts parts, string source)
    {
        _model = parts.Model;
        _normalizer = parts.Normalizer;
        _preTokenizer = parts.PreTokenizer;
        _postProcessor = parts.PostProcessor;
        _decoder = parts.Decoder;
        _pieceDecoder = parts.PieceDecoder;
        _tokenToId = parts.Vocab;
        ModelKind = parts.Kind;
        AddedTokens = parts.AddedTokens;

        VocabSize = _tokenToId.Count == 0 ? 0 : _tokenToId.Values.Max() + 1;
        _idToToken = new string?[VocabSize];
        foreach (var (token, id) in _tokenToId)
            if (_idToToken[id] is null || AddedTokens.Any(a => a.Id == id && a.Content == token)) _idToToken[id] = token;
        _isSpecial = new bool[VocabSize];
        foreach (var t in AddedTokens) if (t.Special) _isSpecial[t.Id] = true;

        _rawMatcher = new AddedTokenMatcher(AddedTokens.Where(t => !t.Normalized || _normalizer is null).Select(t => (t.Content, t)), parts.LongestFirstAddedTokens);
        if (parts.LongestFirstAddedTokens)
            _plainMatcher = new AddedTokenMatcher(AddedTokens.Where(t => !t.Special).Select(t => (t.Content, t)), longestFirst: true);
        _normalizedMatcher = new AddedTokenMatcher(AddedTokens.Where(t => t.Normalized && _normalizer is not null).Select(t => (_normalizer!.Normalize(t.Content), t)));

        int? Resolve(string? token, string what)
        {
            if (token is null) return null;
            if (_tokenToId.TryGetValue(token, out var id)) return id;
            throw new FineTuneException("FT2006", $"The {what} \"{token}\" named in tokenizer_config.json is not in the vocabulary.", source);
        }
        BosTokenId = Resolve(parts.BosToken, "bos_token");
        EosTokenId = Resolve(parts.EosToken, "eos_token");
        PadTokenId = Resolve(parts.PadToken, "pad_token");
        UnkTokenId = Resolve(parts.UnkToken, "unk_token");
        var template = _postProcessor as TemplatePostProcessor ?? (_postProcessor as SequencePostProcessor)?.Steps.OfType<TemplatePostProcessor>().FirstOrDefault();
        AddBosToken = parts.AddBosToken ?? (BosTokenId is { } bos && template?.Single.FirstOrDefault() is { } first && first.Contains(bos));
        AddEosToken = parts.AddEosToken ?? (EosTokenId is { } eos && template?.Single.LastOrDefault() is { } last && last.Contains(eos));

        var endOfTurn = new List<int>();
        foreach (var t in AddedTokens)
            if (t.Special && EndOfTurnNames.Contains(t.Content)) endOfTurn.Add(t.Id);
        if (EosTokenId is { } e && !endOfTurn.Contains(e)) endOfTurn.Add(e);
        EndOfTurnTokenIds = endOfTurn;
    }

    /// <summary>Special tokens that end a turn or a document in the chat formats this project knows.</summary>
    private static readonly HashSet<string> EndOfTurnNames = new(StringComparer.Ordinal)
    {
        "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<|end|>", "<end_of_turn>", "</s>", "<|return|>",
    };

    /// <summary>
    /// Loads <paramref name="path"/>: a tokenizer.json file, or a folder containing tokenizer.json and
    /// optionally tokenizer_config.json (bos/eos/pad/unk tokens, add_bos_token, add_eos_token).
    /// </summary>
    /// <exception cref="FineTuneException">FT2001 when missing, FT2002 when malformed, FT2003 for an unsupported construct, FT2004 for an unusable regex, FT2005/FT2006 for tokenizer_config.json problems.</exception>
    public static Tokenizer Load(string path)
    {
        string file;
        if (Directory.Exists(path)) file = Path.Combine(path, "tokenizer.json");
        else file = path;
        if (!File.Exists(file))
            throw new FineTuneException("FT2001", $"Tokenizer file not found: {file}. Point to a tokenizer.json or a model folder that contains one.", file);
        var configFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "tokenizer_config.json");
        var configJson = File.Exists(configFile) ? File.ReadAllText(configFile) : null;
        return FromJson(File.ReadAllText(file), configJson, file, configFile);
    }

    /// <summary>Builds a tokenizer from the text of a tokenizer.json (and optionally a tokenizer_config.json).</summary>
    /// <param name="tokenizerJson">Contents of tokenizer.json.</param>
    /// <param name="tokenizerConfigJson">Contents of tokenizer_config.json, or null.</param>
    /// <param name="sourcePath">Where the JSON came from, for error messages.</param>
    /// <param name="configPath">Where the config came from, for error messages.</param>
    public static Tokenizer FromJson(string tokenizerJson, string? tokenizerConfigJson = null, string sourcePath = "tokenizer.json", string configPath = "tokenizer_config.json") =>
        new(TokenizerJsonReader.Read(tokenizerJson, sourcePath, tokenizerConfigJson, configPath), sourcePath);

    /// <summary>
    /// Builds a tokenizer from a SentencePiece vocabulary of pieces, scores and token types (a GGUF's
    /// <c>tokenizer.ggml.*</c> with model <c>llama</c>) that encodes and decodes as llama.cpp does.
    /// </summary>
    /// <param name="vocabulary">The pieces, scores, types, special ids and flags.</param>
    /// <param name="sourcePath">Where the vocabulary came from, for error messages.</param>
    public static Tokenizer FromSentencePiece(SentencePieceVocabulary vocabulary, string sourcePath) =>
        new(SentencePieceAssembler.Assemble(vocabulary), sourcePath);

    /// <summary>Byte-level BPE or SentencePiece-style BPE.</summary>
    public TokenizerModelKind ModelKind { get; }

    /// <summary>Number of ids: one more than the largest id of the vocabulary and the added tokens.</summary>
    public int VocabSize { get; }

    /// <summary>Added tokens as listed in tokenizer.json, with their <see cref="AddedToken.Special"/> flag.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>BPE merges as (left, right) token pairs in rank order (rank 0 first).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _model.Merges;

    /// <summary>Id of the beginning-of-sequence token from tokenizer_config.json, if any.</summary>
    public int? BosTokenId { get; }

    /// <summary>Id of the end-of-sequence token from tokenizer_config.json, if any.</summary>
    public int? EosTokenId { get; }

    /// <summary>Id of the padding token from tokenizer_config.json, if any.</summary>
    public int? PadTokenId { get; }

    /// <summary>Id of the unknown token (tokenizer_config.json, else the BPE model's <c>unk_token</c>), if any.</summary>
    public int? UnkTokenId { get; }

    /// <summary>
    /// Whether a BOS token starts every sequence: tokenizer_config.json's <c>add_bos_token</c>, else
    /// whether the post-processor's template starts with the BOS token.
    /// </summary>
    public bool AddBosToken { get; }

    /// <summary>Whether an EOS token ends every sequence (<c>add_eos_token</c>, else the template).</summary>
    public bool AddEosToken { get; }

    /// <summary>
    /// Special added tokens that end a turn or a document (<c>&lt;|eot_id|&gt;</c>, <c>&lt;|im_end|&gt;</c>,
    /// <c>&lt;|endoftext|&gt;</c>, <c>&lt;/s&gt;</c>, ...) plus the EOS token: the stop tokens of a chat model.
    /// </summary>
    public IReadOnlyList<int> EndOfTurnTokenIds { get; }

    /// <summary>The token string of <paramref name="id"/> (byte-level characters for byte-level models), or null for an unused id.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>The id of a token string (vocabulary or added token), or null.</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <summary>All token strings ordered by id (null where an id is unused), added tokens included.</summary>
    public IReadOnlyList<string?> Tokens => _idToToken;

    /// <summary>True when <paramref name="id"/> is an added token marked special.</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_isSpecial.Length && _isSpecial[id];

    /// <summary>Encodes <paramref name="text"/>, recognising added tokens anywhere in it.</summary>
    /// <param name="text">Input text.</param>
    /// <param name="addSpecialTokens">Apply the post-processor's template (e.g. Llama 2's leading <c>&lt;s&gt;</c>).</param>
    public TokenEncoding Encode(string text, bool addSpecialTokens = false) => Encode(text, [], addSpecialTokens);

    /// <summary>
    /// Encodes <paramref name="text"/>, recognising added (special) tokens only outside
    /// <paramref name="plainTextSpans"/>: text from a dataset can never become a control token.
    /// (A GGUF SentencePiece vocabulary still cuts its user-defined tokens out of plain text, as
    /// llama.cpp does without special-token parsing.)
    /// Apart from that the text is tokenized as one string, so ids equal Hugging Face's for
    /// content without special-token look-alikes.
    /// </summary>
    /// <param name="text">Input text.</param>
    /// <param name="plainTextSpans">Ranges of <paramref name="text"/> (UTF-16 offsets) that are plain text.</param>
    /// <param name="addSpecialTokens">Apply the post-processor's template.</param>
    public TokenEncoding Encode(string text, IReadOnlyList<TextSpan> plainTextSpans, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var state = new EncodeState(text.Length / 3 + 4);
        var spans = Sorted(plainTextSpans);

        var matches = new List<AddedTokenMatch>();
        if (!_rawMatcher.IsEmpty)
        {
            var pos = 0;
            foreach (var span in spans)
            {
                if (span.Start > pos) _rawMatcher.FindAll(text, pos, span.Start, matches.Count > 0 ? matches[^1].End : 0, matches);
                var plainFrom = Math.Max(pos, span.Start);
                if (_plainMatcher is not null && span.End > plainFrom) _plainMatcher.FindAll(text, plainFrom, span.End, 0, matches);
                pos = Math.Max(pos, span.End);
                if (matches.Count > 0) pos = Math.Max(pos, matches[^1].End);
            }
            if (pos < text.Length) _rawMatcher.FindAll(text, pos, text.Length, matches.Count > 0 ? matches[^1].End : 0, matches);
        }

        var cursor = 0;
        foreach (var m in matches)
        {
            if (m.Start < cursor) continue;
            if (m.Start > cursor) EncodeSection(text, cursor, m.Start, spans, state);
            state.Add(m.Id, m.Start, m.End);
            cursor = m.End;
        }
        if (cursor < text.Length) EncodeSection(text, cursor, text.Length, spans, state);

        var ids = state.Ids;
        var offsets = new List<TextSpan>(ids.Count);
        for (var i = 0; i < ids.Count; i++) offsets.Add(new TextSpan(state.Starts[i], state.Ends[i]));
        _postProcessor?.Process(ids, offsets, IdToToken, text, addSpecialTokens);
        return new TokenEncoding(ids.ToArray(), offsets.ToArray());
    }

    private static List<TextSpan> Sorted(IReadOnlyList<TextSpan> spans)
    {
        var list = new List<TextSpan>(spans.Count);
        foreach (var s in spans) if (s.End > s.Start) list.Add(s);
        list.Sort((a, b) => a.Start.CompareTo(b.Start));
        return list;
    }

    /// <summary>Working lists of one Encode call.</summary>
    private sealed class EncodeState(int capacity)
    {
        public readonly List<int> Ids = new(capacity), Starts = new(capacity), Ends = new(capacity);
        public readonly List<int> PieceIds = new(), PieceStarts = new(), PieceEnds = new();
        public readonly PreTokenizeContext Context = new();
        public readonly List<AddedTokenMatch> NormalizedMatches = new();

        public void Add(int id, int start, int end)
        {
            Ids.Add(id);
            Starts.Add(start);
            Ends.Add(end);
        }
    }

    /// <summary>Normalizes, pre-tokenizes and BPE-encodes input [from, to) that holds no raw added token.</summary>
    private void EncodeSection(string text, int from, int to, List<TextSpan> spans, EncodeState state)
    {
        var sectionText = from == 0 && to == text.Length ? text : text.Substring(from, to - from);
        var normalized = _normalizer?.Normalize(NormalizedText.Identity(sectionText)) ?? NormalizedText.Identity(sectionText);
        if (normalized.Text.Length == 0) return;

        if (_normalizedMatcher.IsEmpty)
        {
            EncodeNormalized(normalized, 0, normalized.Text.Length, from, state);
            return;
        }
        // Tokens with normalized=true are matched in the normalized text, outside plain spans.
        var found = state.NormalizedMatches;
        found.Clear();
        _normalizedMatcher.FindAll(normalized.Text, 0, normalized.Text.Length, 0, found);
        var cursor = 0;
        foreach (var m in found)
        {
            if (m.Start < cursor) continue;
            var origStart = from + normalized.StartOf(m.Start);
            var origEnd = from + (m.End > m.Start ? normalized.EndOf(m.End - 1) : normalized.StartOf(m.Start));
            if (spans.Any(s => s.Overlaps(origStart, origEnd))) continue;
            if (m.Start > cursor) EncodeNormalized(normalized, cursor, m.Start, from, state);
            state.Add(m.Id, origStart, origEnd);
            cursor = m.End;
        }
        if (cursor < normalized.Text.Length) EncodeNormalized(normalized, cursor, normalized.Text.Length, from, state);
    }

    private void EncodeNormalized(NormalizedText normalized, int start, int end, int offset, EncodeState state)
    {
        var ctx = state.Context;
        ctx.Reset(normalized.Text, offset + normalized.StartOf(start) == 0);
        ctx.Pieces.Clear();
        ctx.Pieces.Add(new Piece(start, end));
        _preTokenizer?.PreTokenize(ctx);

        foreach (var piece in ctx.Pieces)
        {
            state.PieceIds.Clear();
            state.PieceStarts.Clear();
            state.PieceEnds.Clear();
            _model.Encode(ctx.View(piece), state.PieceIds, state.PieceStarts, state.PieceEnds);
            var prefix = piece.Prefix?.Length ?? 0;
            for (var k = 0; k < state.PieceIds.Count; k++)
            {
                var a = piece.Start + Math.Max(0, state.PieceStarts[k] - prefix);
                var b = piece.Start + Math.Max(0, state.PieceEnds[k] - prefix);
                int s, e;
                if (b > a)
                {
                    s = normalized.StartOf(a);
                    e = normalized.EndOf(b - 1);
                }
                else s = e = normalized.StartOf(a);
                state.Add(state.PieceIds[k], offset + s, offset + e);
            }
        }
    }

    /// <summary>Turns ids back into text with the tokenizer's decoder (no clean-up of spaces).</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Leave out added tokens marked special.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        if (_pieceDecoder is not null) return _pieceDecoder.Decode(ids, skipSpecialTokens);
        var tokens = new List<string>(ids.Count);
        foreach (var id in ids)
        {
            var token = IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary (size {VocabSize}).");
            if (skipSpecialTokens && _isSpecial[id]) continue;
            tokens.Add(token);
        }
        if (_decoder is null) return string.Join(' ', tokens);
        return string.Concat(_decoder.DecodeChain(tokens));
    }

    /// <summary>Starts decoding a stream of generated ids, e.g. for chat output.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
