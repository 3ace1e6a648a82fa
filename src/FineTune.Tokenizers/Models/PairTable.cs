using System.Numerics;
using System.Runtime.CompilerServices;

namespace FineTune.Tokenizers.Models;

/// <summary>
/// Merge ranks keyed by a pair of token ids: open addressing over flat arrays with a multiplicative
/// hash. A <c>Dictionary&lt;long, long&gt;</c> hashes a pair to <c>left ^ right</c>, which for ids
/// below 2^17 puts hundreds of thousands of merges into a few ten thousand buckets; the lookups
/// of that collision chain were most of the merge loop's time.
/// </summary>
internal sealed class PairTable
{
    private const long Empty = -1;
    private readonly long[] _keys;
    private readonly long[] _values;
    private readonly int _shift;
    private readonly int _mask;

    public PairTable(int count)
    {
        var capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, count * 2));
        _keys = new long[capacity];
        _values = new long[capacity];
        Array.Fill(_keys, Empty);
        _mask = capacity - 1;
        _shift = 64 - BitOperations.Log2((uint)capacity);
    }

    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(long key) => (int)((ulong)(key * unchecked((long)0x9E3779B97F4A7C15)) >> _shift);

    /// <summary>Adds the pair unless it is present (the first, lowest-ranked merge of a pair wins).</summary>
    public void TryAdd(int left, int right, long value)
    {
        var key = Key(left, right);
        for (var i = Slot(key); ; i = (i + 1) & _mask)
        {
            if (_keys[i] == key) return;
            if (_keys[i] == Empty)
            {
                _keys[i] = key;
                _values[i] = value;
                return;
            }
        }
    }

    /// <summary>The value of the pair, or <see cref="long.MaxValue"/> when the pair has no merge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Get(int left, int right)
    {
        var key = Key(left, right);
        var keys = _keys;
        for (var i = Slot(key); ; i = (i + 1) & _mask)
        {
            var k = keys[i];
            if (k == key) return _values[i];
            if (k == Empty) return long.MaxValue;
        }
    }
}
