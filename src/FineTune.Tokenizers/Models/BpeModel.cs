using System.Collections.Concurrent;
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
    private readonly Dictionary<long, long> _merges; // (left << 32 | right) -> (rank << 32 | merged id)
    private readonly int[] _byteIds = new int[256];  // byte-level: id of each single byte, -1 if absent
    private readonly int[] _fallbackIds = new int[256]; // <0xNN> ids, -1 if absent
    private readonly bool _plainSymbols;
    private readonly ConcurrentDictionary<string, int[]> _cache = new();
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheBySpan;
    private IReadOnlyList<(string Left, string Right)>? _mergeList;

    private BpeModel(Dictionary<string, int> vocab, BpeOptions options, Dictionary<long, long> merges)
    {
        _vocab = vocab;
        _vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _cacheBySpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
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
    public static BpeModel FromPairs(Dictionary<string, int> vocab, Dictionary<long, long> merges, BpeOptions options, int firstPlaceholderId = int.MaxValue) =>
        new(vocab, options, merges) { _firstPlaceholderId = firstPlaceholderId };

    private int _firstPlaceholderId = int.MaxValue;

    /// <summary>The key of a (left, right) pair in a <see cref="FromPairs"/> table.</summary>
    public static long PairKey(int left, int right) => Key(left, right);

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, BpeOptions options, Func<string, Exception> invalid)
        : this(vocab, options, new Dictionary<long, long>(merges.Count))
    {
        _mergeList = merges;
        var prefixLength = options.ContinuingSubwordPrefix.Length;
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            if (!vocab.TryGetValue(a, out var left) || !vocab.TryGetValue(b, out var right))
                throw invalid($"merge #{rank} (\"{a}\" \"{b}\") uses a token that is not in the vocabulary");
            var mergedText = a + (b.Length >= prefixLength ? b[prefixLength..] : b);
            if (!vocab.TryGetValue(mergedText, out var merged))
                throw invalid($"merge #{rank} (\"{a}\" \"{b}\") produces \"{mergedText}\", which is not in the vocabulary");
            _merges.TryAdd(Key(left, right), ((long)rank << 32) | (uint)merged);
        }
    }

    public BpeOptions Options { get; }

    /// <summary>The merges in rank order (for a <see cref="FromPairs"/> model, listed from its table).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _mergeList ??= ListPairs();

    private List<(string, string)> ListPairs()
    {
        var names = new Dictionary<int, string>(_vocab.Count);
        foreach (var (text, id) in _vocab) names.TryAdd(id, text);
        return [.. _merges.OrderBy(m => m.Value >> 32).ThenBy(m => m.Key).Select(m => (names[(int)(m.Key >> 32)], names[(int)m.Key]))];
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>
    /// Appends the tokens of <paramref name="piece"/>: ids, and for each the [start, end) range of
    /// UTF-16 units of <paramref name="piece"/> it covers (a token that is part of a character
    /// covers the whole character).
    /// </summary>
    public void Encode(ReadOnlySpan<char> piece, List<int> ids, List<int> starts, List<int> ends)
    {
        if (piece.Length == 0) return;
        if (piece.Length < MaxCachedLength && _cacheBySpan.TryGetValue(piece, out var cached))
        {
            Emit(cached, ids, starts, ends);
            return;
        }
        var result = Compute(piece);
        if (piece.Length < MaxCachedLength)
        {
            if (_cache.Count >= MaxCacheEntries) _cache.Clear();
            _cache.TryAdd(piece.ToString(), result);
        }
        Emit(result, ids, starts, ends);
    }

    private static void Emit(int[] packed, List<int> ids, List<int> starts, List<int> ends)
    {
        var n = packed.Length / 3;
        for (var i = 0; i < n; i++)
        {
            ids.Add(packed[i]);
            starts.Add(packed[n + i]);
            ends.Add(packed[2 * n + i]);
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
            var width = CodePointWidth(piece, i);
            var count = Encoding.UTF8.GetBytes(piece.Slice(i, width), utf8);
            for (var b = 0; b < count; b++)
            {
                var id = _byteIds[utf8[b]];
                if (id < 0) AddUnknown(s, i, i + width);
                else s.Add(id, i, i + width, false);
            }
            i += width;
        }
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
        return _merges.TryGetValue(Key(s.Id[i], s.Id[j]), out var v) ? v : long.MaxValue;
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

    /// <summary>Long words: a priority queue ordered by (rank, position), stale entries skipped.</summary>
    private void MergeWithHeap(Symbols s)
    {
        var queue = new PriorityQueue<int, (long Rank, int Pos)>();
        for (var i = 0; i < s.Count; i++)
        {
            var r = Rank(s, i);
            if (r != long.MaxValue) queue.Enqueue(i, (r, i));
        }
        while (queue.TryDequeue(out var i, out var priority))
        {
            if (s.Removed[i] || s.Next[i] < 0 || Rank(s, i) != priority.Rank) continue;
            s.Merge(i, (int)(priority.Rank & 0xFFFFFFFF));
            var r = Rank(s, i);
            if (r != long.MaxValue) queue.Enqueue(i, (r, i));
            var p = s.Prev[i];
            if (p >= 0)
            {
                var pr = Rank(s, p);
                if (pr != long.MaxValue) queue.Enqueue(p, (pr, p));
            }
        }
    }

    /// <summary>A doubly linked list of symbols in parallel arrays, reused between calls.</summary>
    private sealed class Symbols
    {
        public int Count;
        public int[] Id = new int[64], Start = new int[64], End = new int[64], Prev = new int[64], Next = new int[64];
        public long[] Rank = new long[64];
        public bool[] IsUnknown = new bool[64], Removed = new bool[64];

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
