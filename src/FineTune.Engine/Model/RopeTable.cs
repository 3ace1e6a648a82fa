namespace FineTune.Engine.Model;

/// <summary>
/// Rotary embedding cos/sin per position and frequency, computed as Hugging Face does (inverse
/// frequencies in F32, llama3 scaling applied to them) and rotating the halves of each head
/// (<c>rotate_half</c>): element i pairs with element i + head_dim/2.
/// </summary>
public sealed class RopeTable
{
    private readonly int _half;
    private float[] _cos = [];
    private float[] _sin = [];
    private readonly float[] _invFreq;

    /// <summary>
    /// Builds the inverse frequencies of a config's global layers, or with <paramref name="local"/> of
    /// its sliding-window layers (Gemma 3: their own base, never scaled).
    /// </summary>
    public RopeTable(ModelConfig c, bool local = false)
    {
        _half = c.HeadDim / 2;
        _invFreq = new float[_half];
        var theta = local ? c.RopeLocalTheta ?? c.RopeTheta : c.RopeTheta;
        for (var i = 0; i < _half; i++)
        {
            var f = (float)(1.0 / Math.Pow(theta, (float)(2 * i) / c.HeadDim));
            if (!local && c.LinearRopeFactor is { } linear) f = (float)(f / linear);
            _invFreq[i] = !local && c.RopeScaling is { } s ? Scale(f, s) : f;
            // llama.cpp divides each frequency by its factor (ggml_rope_ext's freq_factors).
            if (!local && c.RopeFrequencyFactors is { } factors) _invFreq[i] = f / factors[i];
        }
    }

    /// <summary>The table of each layer: the local one for sliding-window layers, the global one otherwise.</summary>
    public static RopeTable[] PerLayer(ModelConfig c)
    {
        var global = new RopeTable(c);
        var local = c.SlidingLayers is null ? global : new RopeTable(c, local: true);
        return Enumerable.Range(0, c.NumLayers).Select(l => c.IsSlidingLayer(l) ? local : global).ToArray();
    }

    private static float Scale(float invFreq, Llama3RopeScaling s)
    {
        var lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        var highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        var wavelen = 2 * Math.PI / invFreq;
        if (wavelen < highWavelen) return invFreq;
        if (wavelen > lowWavelen) return (float)(invFreq / s.Factor);
        var smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return (float)((1 - smooth) * invFreq / s.Factor + smooth * invFreq);
    }

    /// <summary>The inverse frequencies (llama3 scaling applied), one per pair of a head.</summary>
    public ReadOnlySpan<float> InverseFrequencies => _invFreq;

    /// <summary>Makes sure positions 0..count-1 are tabulated.</summary>
    public void EnsurePositions(int count)
    {
        if (_cos.Length >= count * _half) return;
        lock (this)
        {
            var cos = new float[count * _half];
            var sin = new float[count * _half];
            for (var p = 0; p < count; p++)
                for (var i = 0; i < _half; i++)
                {
                    var angle = (float)p * _invFreq[i];
                    cos[p * _half + i] = (float)Math.Cos(angle);
                    sin[p * _half + i] = (float)Math.Sin(angle);
                }
            (_cos, _sin) = (cos, sin);
        }
    }

    /// <summary>Rotates one head vector in place at <paramref name="position"/>; <paramref name="inverse"/> applies the transpose (backward pass).</summary>
    public void Apply(Span<float> head, int position, bool inverse = false)
    {
        var cos = _cos.AsSpan(position * _half, _half);
        var sin = _sin.AsSpan(position * _half, _half);
        for (var i = 0; i < _half; i++)
        {
            var x1 = head[i];
            var x2 = head[i + _half];
            var s = inverse ? -sin[i] : sin[i];
            head[i] = x1 * cos[i] - x2 * s;
            head[i + _half] = x2 * cos[i] + x1 * s;
        }
    }
}
