using FineTune.Engine.Model;

namespace FineTune.Engine.Inference;

/// <summary>
/// The keys and values (after RoPE) of every position a <see cref="DecoderSession"/> has processed,
/// per layer, row-major [positions × kv_dim]. Row t depends only on tokens 0..t, so cutting the
/// cache back to a shorter length leaves a valid cache for that prefix.
/// </summary>
public sealed class KvCache
{
    private readonly int _kvDim;
    private readonly float[][] _keys;
    private readonly float[][] _values;

    /// <summary>An empty cache for <paramref name="config"/> with room for <paramref name="capacity"/> positions (it grows on demand).</summary>
    public KvCache(ModelConfig config, int capacity = 256)
    {
        _kvDim = config.KvDim;
        _keys = new float[config.NumLayers][];
        _values = new float[config.NumLayers][];
        Capacity = Math.Max(1, capacity);
        for (var l = 0; l < config.NumLayers; l++)
        {
            _keys[l] = new float[Capacity * _kvDim];
            _values[l] = new float[Capacity * _kvDim];
        }
    }

    /// <summary>Positions held.</summary>
    public int Length { get; private set; }

    /// <summary>Positions that fit without reallocating.</summary>
    public int Capacity { get; private set; }

    /// <summary>Keys of <paramref name="layer"/> [Capacity × kv_dim]; rows beyond <see cref="Length"/> are scratch.</summary>
    public float[] Keys(int layer) => _keys[layer];

    /// <summary>Values of <paramref name="layer"/> [Capacity × kv_dim].</summary>
    public float[] Values(int layer) => _values[layer];

    /// <summary>Makes room for <paramref name="positions"/> positions in total, keeping what is held.</summary>
    public void EnsureCapacity(int positions)
    {
        if (positions <= Capacity) return;
        var capacity = Math.Max(positions, Capacity * 2);
        for (var l = 0; l < _keys.Length; l++)
        {
            Array.Resize(ref _keys[l], capacity * _kvDim);
            Array.Resize(ref _values[l], capacity * _kvDim);
        }
        Capacity = capacity;
    }

    /// <summary>Marks <paramref name="count"/> more positions as filled (after their rows were written).</summary>
    internal void Advance(int count) => Length += count;

    /// <summary>Forgets every position from <paramref name="length"/> on.</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        Length = length;
    }
}
