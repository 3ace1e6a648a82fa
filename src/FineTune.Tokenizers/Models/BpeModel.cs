using System.Runtime.CompilerServices;
using System.Text;

namespace FineTune.Tokenizers.Models;

/// <summary>Settings of a tokenizer.json <c>"model": {"type": "BPE", ...}</c>.</summary>
internal sealed record BpeOptions(
    bool ByteLevel,
    bool ByteFallback,
    int? UnkId,
    bool FuseUnk,
    bool IgnoreMerges,
    string ContinuingSubwordPrefix,
    string EndOfWordSuffix);

/// <summary>
/// Byte-pair encoding of one pre-token: start from bytes (byte-level models) or characters
/// (SentencePiece-style models, with <c>&lt;0xNN&gt;</c> byte fallback), then repeatedly apply the
/// lowest-ranked merge, leftmost first, exactly as Hugging Face tokenizers do. Results of short
/// pre-tokens are cached, keyed by their text without allocating for lookups.
/// </summary>
internal sealed class BpeModel
{
    private const int MaxCachedLength = 256;
    private const int MaxCacheEntries = 200_000;
    private const int HeapThreshold = 96;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    private readonly PairTable _merges; // (left, right) -> (rank << 32 | merged id)
    private readonly int[] _byteIds = new int[256];  // byte-level: id of each single byte, -1 if absent
    private readonly int[] _fallbackIds = new int[256]; // <0xNN> ids, -1 if absent
    private readonly bool _plainSymbols;
    private readonly bool _splitBeforeSpaceMarks;
    private const char SpaceMark = '\u2581'; // SentencePiece's ▁
    // One word cache per thread: a shared ConcurrentDictionary took a lock on every insert, and on
    // unseen text most words are inserted (its Count, which takes every lock, was worse still).
    private readonly ThreadLocal<WordCache> _cache = new(() => new WordCache());

    private BpeModel(Dictionary<string, int> vocab, BpeOptions options, PairTable merges)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        Options = options;
        _plainSymbols = options.ContinuingSubwordPrefix.Length == 0 && options.EndOfWordSuffix.Length == 0;
        _merges = merges;
        for (var b = 0; b < 256; b++)
        {
            _byteIds[b] = vocab.TryGetValue(ByteLevelAlphabet.ByteToChar((byte)b).ToString(), out var id) ? id : -1;
            _fallbackIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var fid) ? fid : -1;
        }
    }

    /// <summary>
    /// A model whose merges are given as (left id, right id) → (rank, merged id). Several pairs may
    /// share a rank: among them the leftmost merges first, which is how SentencePiece orders pairs
    /// whose merged pieces score the same.
    /// </summary>
    /// <param name="vocab">The pieces, and placeholders for characters that are no piece themselves but merge into one.</param>
    /// <param name="merges">(left id, right id) → (rank &lt;&lt; 32 | merged id).</param>
    /// <param name="options">The model's settings.</param>
    /// <param name="firstPlaceholderId">Ids from here on are placeholders: one left unmerged falls back to its character's bytes.</param>
    public static BpeModel FromPairs(Dictionary<string, int> vocab, Dictionary<long, long> merges, BpeOptions options, int firstPlaceholderId = int.MaxValue)
    {
        var table = new PairTable(merges.Count);
        foreach (var (key, value) in merges) table.TryAdd((int)(key >> 32), (int)key, value);
        return new(vocab, options, table) { _firstPlaceholderId = firstPlaceholderId, _pairs = merges };
    }

    private int _firstPlaceholderId = int.MaxValue;
    private Dictionary<long, long>? _pairs; // a FromPairs model's table, to list its merges
    private IReadOnlyList<(string Left, string Right)>? _mergeList;

    /// <summary>The key of a (left, right) pair in a <see cref="FromPairs"/> table.</summary>
    public static long PairKey(int left, int right) => PairTable.Key(left, right);

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, BpeOptions options, Func<string, Exception> invalid)
        : this(vocab, options, new PairTable(merges.Count))
    {
        _mergeList = merges;
        var crossesWordStart = false;
        var prefixLength = options.ContinuingSubwordPrefix.Length;
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            if (!vocab.TryGetValue(a, out var left) || !vocab.TryGetValue(b, out var right))
                throw invalid($"merge #{rank} (\"{a}\" \"{b}\") uses a token that is not in the vocabulary");
            var mergedText = a + (b.Length >= prefixLength ? b[prefixLength..] : b);
            if (!vocab.TryGetValue(mergedText, out var merged))
                throw invalid($"merge #{rank} (\"{a}\" \"{b}\") produces \"{mergedText}\", which is not in the vocabulary");
            _merges.TryAdd(left, right, ((long)rank << 32) | (uint)merged);
            crossesWordStart |= CrossesWordStart(mergedText);
        }
        // A SentencePiece-style model whose merges never join a character to a following ▁ (Llama 2's
        // do not) cannot merge across the start of a ▁word, so words can be merged one at a time:
        // each result is the same as merging the whole text, and repeated words come from the cache
        // instead of one heap over thousands of symbols.
        _splitBeforeSpaceMarks = !options.ByteLevel && _plainSymbols && !options.IgnoreMerges && !crossesWordStart;
    }

    public BpeOptions Options { get; }

    /// <summary>The merges in rank order (for a <see cref="FromPairs"/> model, listed from its table).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _mergeList ??= ListPairs();

    private List<(string, string)> ListPairs()
    {
        var names = new Dictionary<int, string>(_vocab.Count);
        foreach (var (text, id) in _vocab) names.TryAdd(id, text);
        return [.. _pairs!.OrderBy(m => m.Value >> 32).ThenBy(m => m.Key).Select(m => (names[(int)(m.Key >> 32)], names[(int)m.Key]))];
    }

    /// <summary>
    /// Appends the tokens of <paramref name="piece"/>: ids, and for each the [start, end) range of
    /// UTF-16 units of <paramref name="piece"/> it covers (a token that is part of a character
    /// covers the whole character).
    /// </summary>
    public void Encode(ReadOnlySpan<char> piece, List<int> ids, List<int> starts, List<int> ends)
    {
        if (!_splitBeforeSpaceMarks)
        {
            EncodeWord(piece, 0, ids, starts, ends);
            return;
        }
        var start = 0;
        for (var from = 1; from < piece.Length;)
        {
            var k = piece[from..].IndexOf(SpaceMark);
            if (k < 0) break;
            var p = from + k;
            if (piece[p - 1] != SpaceMark)
            {
                // A word starts here (a ▁ after a ▁ continues a run of spaces, which merges together).
                EncodeWord(piece[start..p], start, ids, starts, ends);
                start = p;
            }
            from = p + 1;
        }
        EncodeWord(piece[start..], start, ids, starts, ends);
    }

    /// <summary>True when <paramref name="token"/> holds a character other than ▁ directly followed by ▁.</summary>
    private static bool CrossesWordStart(string token)
    {
        for (var i = 1; i < token.Length; i++)
            if (token[i] == SpaceMark && token[i - 1] != SpaceMark) return true;
        return false;
    }

    private void EncodeWord(ReadOnlySpan<char> piece, int offset, List<int> ids, List<int> starts, List<int> ends)
    {
        if (piece.Length == 0) return;
        var cache = piece.Length < MaxCachedLength ? _cache.Value! : null;
        if (cache is not null && cache.BySpan.TryGetValue(piece, out var cached))
        {
            Emit(cached, offset, ids, starts, ends);
            return;
        }
        var result = Compute(piece);
        if (cache is not null)
        {
            if (cache.Words.Count >= MaxCacheEntries) cache.Words.Clear();
            cache.Words[piece.ToString()] = result;
        }
        Emit(result, offset, ids, starts, ends);
    }

    private static void Emit(int[] packed, int offset, List<int> ids, List<int> starts, List<int> ends)
    {
        var n = packed.Length / 3;
        for (var i = 0; i < n; i++)
        {
            ids.Add(packed[i]);
            starts.Add(offset + packed[n + i]);
            ends.Add(offset + packed[2 * n + i]);
        }
    }

    [ThreadStatic] private static Symbols? t_symbols;

    private int[] Compute(ReadOnlySpan<char> piece)
    {
        var s = t_symbols ??= new Symbols();
        s.Clear();
        if (Options.IgnoreMerges && TryWholeWord(piece, out var whole))
            return [whole, 0, piece.Length];
        if (Options.ByteLevel && _plainSymbols) AddBytes(piece, s);
        else AddCharacters(piece, s);
        if (s.Count > HeapThreshold) MergeWithHeap(s);
        else MergeByScanning(s);

        if (_firstPlaceholderId != int.MaxValue) return PackWithPlaceholders(piece, s);
        var n = 0;
        for (var i = 0; i >= 0 && s.Count > 0; i = s.Next[i]) n++;
        var packed = new int[3 * n];
        var k = 0;
        for (var i = 0; i >= 0 && s.Count > 0; i = s.Next[i], k++)
        {
            packed[k] = s.Id[i];
            packed[n + k] = s.Start[i];
            packed[2 * n + k] = s.End[i];
        }
        return packed;
    }

    private int[] PackWithPlaceholders(ReadOnlySpan<char> piece, Symbols s)
    {
        var symbols = new List<(int Id, int Start, int End)>();
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i >= 0 && s.Count > 0; i = s.Next[i])
        {
            if (s.Id[i] < _firstPlaceholderId)
            {
                symbols.Add((s.Id[i], s.Start[i], s.End[i]));
                continue;
            }
            var count = Encoding.UTF8.GetBytes(piece[s.Start[i]..s.End[i]], utf8);
            foreach (var b in utf8[..count])
            {
                if (_fallbackIds[b] >= 0) symbols.Add((_fallbackIds[b], s.Start[i], s.End[i]));
                else if (Options.UnkId is { } unk) symbols.Add((unk, s.Start[i], s.End[i]));
            }
        }
        var n = symbols.Count;
        var packed = new int[3 * n];
        for (var k = 0; k < n; k++) (packed[k], packed[n + k], packed[2 * n + k]) = symbols[k];
        return packed;
    }

    private bool TryWholeWord(ReadOnlySpan<char> piece, out int id)
    {
        if (!Options.ByteLevel) return _vocabBySpan.TryGetValue(piece, out id);
        Span<byte> bytes = piece.Length <= 256 ? stackalloc byte[piece.Length * 3] : new byte[piece.Length * 3];
        var count = Encoding.UTF8.GetBytes(piece, bytes);
        Span<char> mapped = count <= 512 ? stackalloc char[count] : new char[count];
        for (var i = 0; i < count; i++) mapped[i] = ByteLevelAlphabet.ByteToChar(bytes[i]);
        return _vocabBySpan.TryGetValue(mapped, out id);
    }

    /// <summary>Byte-level start: one symbol per UTF-8 byte.</summary>
    private void AddBytes(ReadOnlySpan<char> piece, Symbols s)
    {
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < piece.Length;)
        {
            int c = piece[i];
            if (c < 0x80)
            {
                AddByte(s, (byte)c, i, i + 1);
                i++;
                continue;
            }
            var width = CodePointWidth(piece, i);
            var count = Utf8(piece, i, width, utf8);
            for (var b = 0; b < count; b++) AddByte(s, utf8[b], i, i + width);
            i += width;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddByte(Symbols s, byte b, int start, int end)
    {
        var id = _byteIds[b];
        if (id < 0) AddUnknown(s, start, end);
        else s.Add(id, start, end, false);
    }

    /// <summary>UTF-8 bytes of the code point at <paramref name="i"/> (a lone surrogate becomes U+FFFD, as Encoding.UTF8 does).</summary>
    private static int Utf8(ReadOnlySpan<char> piece, int i, int width, Span<byte> utf8)
    {
        int c = piece[i];
        if (width == 2) c = char.ConvertToUtf32(piece[i], piece[i + 1]);
        else if (c is >= 0xD800 and <= 0xDFFF) c = 0xFFFD;
        if (c < 0x80) { utf8[0] = (byte)c; return 1; }
        if (c < 0x800) { utf8[0] = (byte)(0xC0 | (c >> 6)); utf8[1] = (byte)(0x80 | (c & 0x3F)); return 2; }
        if (c < 0x10000)
        {
            utf8[0] = (byte)(0xE0 | (c >> 12)); utf8[1] = (byte)(0x80 | ((c >> 6) & 0x3F)); utf8[2] = (byte)(0x80 | (c & 0x3F));
            return 3;
        }
        utf8[0] = (byte)(0xF0 | (c >> 18)); utf8[1] = (byte)(0x80 | ((c >> 12) & 0x3F));
        utf8[2] = (byte)(0x80 | ((c >> 6) & 0x3F)); utf8[3] = (byte)(0x80 | (c & 0x3F));
        return 4;
    }

    /// <summary>Character start (SentencePiece-style), with byte fallback, unknown-token fusing and affixes.</summary>
    private void AddCharacters(ReadOnlySpan<char> piece, Symbols s)
    {
        Span<char> buffer = stackalloc char[64];
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < piece.Length;)
        {
            var width = CodePointWidth(piece, i);
            ReadOnlySpan<char> unit = piece.Slice(i, width);
            if (Options.ByteLevel)
            {
                // Byte-level with affixes: each byte is its own unit.
                var count = Encoding.UTF8.GetBytes(unit, utf8);
                for (var b = 0; b < count; b++)
                {
                    Span<char> one = [ByteLevelAlphabet.ByteToChar(utf8[b])];
                    LookupUnit(one, i == 0 && b == 0, i + width >= piece.Length && b == count - 1, buffer, s, i, i + width, utf8[b..(b + 1)]);
                }
            }
            else
            {
                var count = Encoding.UTF8.GetBytes(unit, utf8);
                LookupUnit(unit, i == 0, i + width >= piece.Length, buffer, s, i, i + width, utf8[..count]);
            }
            i += width;
        }
    }

    private void LookupUnit(ReadOnlySpan<char> unit, bool first, bool last, Span<char> buffer, Symbols s, int start, int end, ReadOnlySpan<byte> bytes)
    {
        ReadOnlySpan<char> key = unit;
        if (!_plainSymbols)
        {
            var prefix = first ? "" : Options.ContinuingSubwordPrefix;
            var suffix = last ? Options.EndOfWordSuffix : "";
            var total = prefix.Length + unit.Length + suffix.Length;
            var target = total <= buffer.Length ? buffer[..total] : new char[total];
            prefix.AsSpan().CopyTo(target);
            unit.CopyTo(target[prefix.Length..]);
            suffix.AsSpan().CopyTo(target[(prefix.Length + unit.Length)..]);
            key = target;
        }
        if (_vocabBySpan.TryGetValue(key, out var id))
        {
            s.Add(id, start, end, false);
            return;
        }
        if (Options.ByteFallback)
        {
            var all = true;
            foreach (var b in bytes) all &= _fallbackIds[b] >= 0;
            if (all)
            {
                foreach (var b in bytes) s.Add(_fallbackIds[b], start, end, false);
                return;
            }
        }
        AddUnknown(s, start, end);
    }

    private void AddUnknown(Symbols s, int start, int end)
    {
        // Without an unknown token Hugging Face drops the character; so do we.
        if (Options.UnkId is not { } unk) return;
        if (Options.FuseUnk && s.Count > 0 && s.IsUnknown[s.Count - 1])
        {
            s.End[s.Count - 1] = end;
            return;
        }
        s.Add(unk, start, end, true);
    }

    private static int CodePointWidth(ReadOnlySpan<char> text, int i) =>
        char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;

    private long Rank(Symbols s, int i)
    {
        var j = s.Next[i];
        if (j < 0 || s.IsUnknown[i] || s.IsUnknown[j]) return long.MaxValue;
        return _merges.Get(s.Id[i], s.Id[j]);
    }

    /// <summary>Short words: keep each pair's merge and scan for the best; O(n²) but tiny n.</summary>
    private void MergeByScanning(Symbols s)
    {
        if (s.Count < 2) return;
        var rank = s.Rank;
        for (var i = 0; i < s.Count; i++) rank[i] = Rank(s, i);
        while (true)
        {
            var best = -1;
            var bestRank = long.MaxValue;
            for (var i = 0; i >= 0; i = s.Next[i])
            {
                // The rank sits in the high half and the list is walked left to right, so the first minimum is the
                // leftmost best merge (ranks shared by several pairs included).
                if (rank[i] < bestRank) { bestRank = rank[i]; best = i; }
            }
            if (best < 0) return;
            s.Merge(best, (int)(bestRank & 0xFFFFFFFF));
            rank[best] = Rank(s, best);
            if (s.Prev[best] >= 0) rank[s.Prev[best]] = Rank(s, s.Prev[best]);
        }
    }

    /// <summary>
    /// Long words: a min-heap of (rank, position) packed into one long, stale entries skipped. Each
    /// live symbol keeps the rank and merged id of the pair it starts in <c>Rank</c>, so an entry is
    /// current when its rank still equals that, and no hash lookup is needed. Where pairs share a rank
    /// (SentencePiece from GGUF), a matching entry may stand for a newer pair of the same rank at that
    /// position: merging it is still the leftmost lowest-ranked merge, with the id taken from <c>Rank</c>.
    /// </summary>
    private void MergeWithHeap(Symbols s)
    {
        var heap = s.Heap;
        heap.Clear();
        var rank = s.Rank;
        for (var i = 0; i < s.Count; i++)
        {
            var r = rank[i] = Rank(s, i);
            if (r != long.MaxValue) heap.Push(Entry(r, i));
        }
        while (heap.Count > 0)
        {
            var e = heap.Pop();
            var i = (int)(e & 0xFFFFFFFF);
            var r = (e >> 32) & 0x7FFFFFFF;
            if (s.Removed[i] || rank[i] == long.MaxValue || (rank[i] >> 32) != r) continue;
            s.Merge(i, (int)(rank[i] & 0xFFFFFFFF));
            var nr = rank[i] = Rank(s, i);
            if (nr != long.MaxValue) heap.Push(Entry(nr, i));
            var p = s.Prev[i];
            if (p >= 0)
            {
                var pr = rank[p] = Rank(s, p);
                if (pr != long.MaxValue) heap.Push(Entry(pr, p));
            }
        }
    }

    private static long Entry(long packedRank, int position) => ((packedRank >> 32) << 32) | (uint)position;

    private sealed class WordCache
    {
        public readonly Dictionary<string, int[]> Words = new(StringComparer.Ordinal);
        public readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> BySpan;

        public WordCache() => BySpan = Words.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>A doubly linked list of symbols in parallel arrays, reused between calls.</summary>
    private sealed class Symbols
    {
        public int Count;
        public int[] Id = new int[64], Start = new int[64], End = new int[64], Prev = new int[64], Next = new int[64];
        public long[] Rank = new long[64];
        public bool[] IsUnknown = new bool[64], Removed = new bool[64];
        public readonly LongMinHeap Heap = new();

        public void Clear() => Count = 0;

        public void Add(int id, int start, int end, bool unknown)
        {
            if (Count == Id.Length) Grow();
            Id[Count] = id;
            Start[Count] = start;
            End[Count] = end;
            Prev[Count] = Count - 1;
            Next[Count] = -1;
            IsUnknown[Count] = unknown;
            Removed[Count] = false;
            if (Count > 0) Next[Count - 1] = Count;
            Count++;
        }

        /// <summary>Merges symbol <paramref name="i"/> with its successor into <paramref name="id"/>.</summary>
        public void Merge(int i, int id)
        {
            var j = Next[i];
            Id[i] = id;
            End[i] = End[j];
            Next[i] = Next[j];
            if (Next[j] >= 0) Prev[Next[j]] = i;
            Removed[j] = true;
        }

        private void Grow()
        {
            var n = Id.Length * 2;
            Array.Resize(ref Id, n);
            Array.Resize(ref Start, n);
            Array.Resize(ref End, n);
            Array.Resize(ref Prev, n);
            Array.Resize(ref Next, n);
            Array.Resize(ref Rank, n);
            Array.Resize(ref IsUnknown, n);
            Array.Resize(ref Removed, n);
        }
    }
}
