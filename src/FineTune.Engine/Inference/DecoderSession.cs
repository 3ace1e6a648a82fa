using System.Numerics.Tensors;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Model;

namespace FineTune.Engine.Inference;

/// <summary>
/// One sequence being decoded: its KV cache and the scratch buffers of the forward pass. Feeding
/// tokens computes only their rows — keys and values of earlier positions come from the cache — and
/// only the last row's logits, so a generated token costs one row of work instead of the whole
/// sequence. The operations and their order are those of <see cref="LlamaGraph"/>'s forward pass.
/// Not thread-safe (its kernels are parallel inside).
/// </summary>
public sealed class DecoderSession
{
    private readonly LlamaDecoder _d;
    private readonly ModelConfig _c;
    private float[] _x = [], _norm = [], _rstd = [], _q = [], _k = [], _v = [], _qPre = [], _kPre = [], _qkRstd = [];
    private float[] _att = [], _tmp = [], _x1 = [], _gate = [], _up = [], _act = [], _loraHidden = [], _scores = [], _sandwich = [];
    private readonly float[] _logits;

    internal DecoderSession(LlamaDecoder decoder, int initialCapacity)
    {
        _d = decoder;
        _c = decoder.Config;
        Cache = new KvCache(_c, initialCapacity);
        _logits = new float[_c.VocabSize];
    }

    /// <summary>The keys and values of the tokens fed so far.</summary>
    public KvCache Cache { get; }

    /// <summary>Tokens fed so far (the next token's position).</summary>
    public int Length => Cache.Length;

    /// <summary>Forgets every token from position <paramref name="length"/> on (to continue from a shared prefix).</summary>
    public void Truncate(int length) => Cache.Truncate(length);

    /// <summary>
    /// Feeds <paramref name="ids"/> at positions <see cref="Length"/>.. and returns the logits of the
    /// token that follows the last of them. The returned array is reused by the next call.
    /// </summary>
    public float[] Append(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty) throw new ArgumentException("Feed at least one token.", nameof(ids));
        int m = ids.Length, h = _c.HiddenSize, p0 = Cache.Length;
        Cache.EnsureCapacity(p0 + m);
        Ensure(m, p0 + m);
        foreach (var rope in _d.Ropes.Distinct()) rope.EnsurePositions(p0 + m);
        var w = _d.Weights;
        for (var t = 0; t < m; t++)
        {
            var id = ids[t];
            if ((uint)id >= (uint)_c.VocabSize)
                throw new FineTuneException("FT3019", $"Token id {id} is outside the model's vocabulary of {_c.VocabSize}; the data was tokenized with another tokenizer.");
            Array.Copy(w.Embedding, (long)id * h, _x, (long)t * h, h);
            if (_c.EmbeddingScale != 1) TensorPrimitives.Multiply(_x.AsSpan(t * h, h), _c.EmbeddingScale, _x.AsSpan(t * h, h));
        }
        for (var l = 0; l < _c.NumLayers; l++) Layer(l, m, p0);
        Cache.Advance(m);

        // Only the last row's distribution is wanted: one row through the final norm and LM head.
        var eps = (float)_c.RmsNormEps;
        var last = _x.AsSpan((m - 1) * h, h);
        var inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(last) / h + eps);
        var normed = _norm.AsSpan(0, h);
        TensorPrimitives.Multiply(last, inv, normed);
        TensorPrimitives.Multiply(normed, w.FinalNorm, normed);
        _d.Backend.MatMulTransposed(_norm, 0, w.LmHead, 0, _logits, 0, 1, _c.VocabSize, h);
        return _logits;
    }

    private void Ensure(int m, int positions)
    {
        int h = _c.HiddenSize, rank = Math.Max(1, _d.Adapter?.Settings.Rank ?? 1);
        Grow(ref _x, m * h); Grow(ref _norm, m * h); Grow(ref _rstd, m);
        Grow(ref _q, m * _c.QDim); Grow(ref _k, m * _c.KvDim); Grow(ref _v, m * _c.KvDim);
        if (_c.QkNorm) { Grow(ref _qPre, m * _c.QDim); Grow(ref _kPre, m * _c.KvDim); Grow(ref _qkRstd, m * _c.NumHeads); }
        Grow(ref _att, m * _c.QDim); Grow(ref _tmp, m * h); Grow(ref _x1, m * h);
        if (_c.SandwichNorms) Grow(ref _sandwich, m * h);
        Grow(ref _gate, m * _c.IntermediateSize); Grow(ref _up, m * _c.IntermediateSize); Grow(ref _act, m * _c.IntermediateSize);
        Grow(ref _loraHidden, m * rank);
        Grow(ref _scores, m * _c.NumHeads * positions);
    }

    private static void Grow(ref float[] a, int size)
    {
        if (a.Length < size) a = new float[size];
    }

    // Below this many multiply-adds per layer a decoding step's kernels finish faster on one thread
    // than it takes to hand half of them to another (a one-token step of a small model is ~40k).
    private const long ParallelLayerMacs = 1 << 20;

    private void Layer(int l, int m, int p0)
    {
        var be = _d.MacsPerPosition * m < ParallelLayerMacs ? _d.SmallWorkBackend : _d.Backend;
        var lw = _d.Weights.Layers[l];
        int h = _c.HiddenSize, kvd = _c.KvDim;
        var eps = (float)_c.RmsNormEps;
        CpuOps.RmsNorm(be, _x, _norm, _rstd, lw.InputNorm, m, h, eps);
        Linear(be, l, Projection.Q, _norm, _q, m);
        Linear(be, l, Projection.K, _norm, _k, m);
        Linear(be, l, Projection.V, _norm, _v, m);
        if (_c.QkNorm)
        {
            Array.Copy(_q, _qPre, m * _c.QDim);
            Array.Copy(_k, _kPre, m * kvd);
            CpuOps.RmsNorm(be, _qPre, _q, _qkRstd, lw.QNorm!, m * _c.NumHeads, _c.HeadDim, eps);
            CpuOps.RmsNorm(be, _kPre, _k, _qkRstd, lw.KNorm!, m * _c.NumKvHeads, _c.HeadDim, eps);
        }
        Rope(l, _q, m, p0, _c.NumHeads);
        Rope(l, _k, m, p0, _c.NumKvHeads);
        Array.Copy(_k, 0, Cache.Keys(l), (long)p0 * kvd, m * kvd);
        Array.Copy(_v, 0, Cache.Values(l), (long)p0 * kvd, m * kvd);
        Attention(be, l, m, p0);
        Linear(be, l, Projection.O, _att, _tmp, m);
        if (_c.SandwichNorms) SandwichNorm(be, lw.AttentionOutNorm!, m);
        TensorPrimitives.Add(_x.AsSpan(0, m * h), _tmp.AsSpan(0, m * h), _x1.AsSpan(0, m * h));
        CpuOps.RmsNorm(be, _x1, _norm, _rstd, lw.PostNorm, m, h, eps);
        Linear(be, l, Projection.Gate, _norm, _gate, m);
        Linear(be, l, Projection.Up, _norm, _up, m);
        CpuOps.GatedActivation(be, _c, _gate, _up, _act, m);
        Linear(be, l, Projection.Down, _act, _tmp, m);
        if (_c.SandwichNorms) SandwichNorm(be, lw.MlpOutNorm!, m);
        TensorPrimitives.Add(_x1.AsSpan(0, m * h), _tmp.AsSpan(0, m * h), _x.AsSpan(0, m * h));
    }

    /// <summary>Gemma 3's norm of a block output before the residual add, in place on _tmp.</summary>
    private void SandwichNorm(IComputeBackend be, float[] w, int m)
    {
        Array.Copy(_tmp, _sandwich, m * _c.HiddenSize);
        CpuOps.RmsNorm(be, _sandwich, _tmp, _rstd, w, m, _c.HiddenSize, (float)_c.RmsNormEps);
    }

    /// <summary>y = x Wᵀ + bias + scale · (x Aᵀ) Bᵀ (no dropout at inference).</summary>
    private void Linear(IComputeBackend be, int l, Projection p, float[] x, float[] y, int m)
    {
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
        var lw = _d.Weights.Layers[l];
        be.MatMulTransposed(x, 0, lw.Linear[(int)p], 0, y, 0, m, outF, inF);
        if (lw.Bias[(int)p] is { } bias)
            for (var t = 0; t < m; t++) TensorPrimitives.Add(y.AsSpan(t * outF, outF), bias, y.AsSpan(t * outF, outF));
        var lora = _d.Adapter;
        if (lora?.A(l, p) is not { } a) return;
        var r = lora.Settings.Rank;
        be.MatMulTransposed(x, 0, a.Value, 0, _loraHidden, 0, m, r, inF);
        TensorPrimitives.Multiply(_loraHidden.AsSpan(0, m * r), lora.Settings.Scale, _loraHidden.AsSpan(0, m * r));
        be.MatMulTransposed(_loraHidden, 0, lora.B(l, p)!.Value, 0, y, 0, m, outF, r, accumulate: true);
    }

    private void Rope(int l, float[] x, int m, int p0, int heads)
    {
        var hd = _c.HeadDim;
        var rope = _d.Ropes[l];
        for (var t = 0; t < m; t++)
            for (var head = 0; head < heads; head++)
                rope.Apply(x.AsSpan((t * heads + head) * hd, hd), p0 + t);
    }

    /// <summary>Causal attention of the new rows over the cached rows 0..(own position), or the last window of them on a sliding-window layer.</summary>
    private unsafe void Attention(IComputeBackend be, int l, int m, int p0)
    {
        int nh = _c.NumHeads, hd = _c.HeadDim, group = nh / _c.NumKvHeads, qd = _c.QDim, kvd = _c.KvDim, span = p0 + m;
        var scale = _c.AttentionScale;
        var window = _c.IsSlidingLayer(l) ? _c.SlidingWindow!.Value : int.MaxValue;
        var keys = Cache.Keys(l);
        var values = Cache.Values(l);
        be.For(m * nh, task =>
        {
            int t = task / nh, head = task % nh, kvh = head / group, pos = p0 + t;
            var first = Math.Max(0, pos - window + 1);
            var row = _scores.AsSpan(task * span, pos + 1 - first);
            fixed (float* q = _q, k = keys, v = values, att = _att)
            {
                var qi = q + (long)t * qd + head * hd;
                for (var j = first; j <= pos; j++)
                    row[j - first] = CpuBackend.Dot(qi, k + (long)j * kvd + kvh * hd, hd) * scale;
                var max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, row);
                TensorPrimitives.Exp(row, row);
                TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
                var oi = new Span<float>(att + (long)t * qd + head * hd, hd);
                oi.Clear();
                for (var j = first; j <= pos; j++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)j * kvd + kvh * hd, hd), row[j - first], oi, oi);
            }
        });
    }
}
