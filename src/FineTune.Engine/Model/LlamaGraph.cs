using System.Numerics.Tensors;
using FineTune.Engine.Backends;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Lora;

namespace FineTune.Engine.Model;

/// <summary>
/// The explicit forward and backward passes of a Llama-family decoder with optional LoRA adapters
/// (the llm.c approach: each op's backward is written by hand over preallocated buffers). Base
/// weights are frozen; the backward pass accumulates gradients into the adapter's tensors only.
/// Not thread-safe: one graph runs one batch at a time (its kernels are parallel inside). The base
/// weights must not change while the graph is in use: it keeps the backend's prepared forms of them.
/// </summary>
public sealed class LlamaGraph
{
    private readonly LlamaWeights _w;
    private readonly ModelConfig _c;
    private readonly LoraAdapter? _lora;
    private readonly IComputeBackend _be;
    private readonly RopeTable[] _ropes;
    private readonly bool _checkpointing;
    private readonly LayerActivations[] _acts;
    private float[][] _resid;
    private float[] _finalNorm = [], _finalRstd = [], _dResid = [], _dNorm = [], _tmpH = [];
    private float[] _dQ = [], _dK = [], _dV = [], _dAtt = [], _dBig1 = [], _dBig2 = [], _dBig3 = [];
    private float[] _tT1 = [], _tR = [], _tDrop = [];
    private float[] _gather = [], _dGather = [], _dProbs = [];
    private readonly HeadCrossEntropy.Workspace _head = new();
    private int _capacityTokens;
    private readonly Dictionary<float[], object> _prepared = new(ReferenceEqualityComparer.Instance);

    /// <summary>Creates a graph over frozen <paramref name="weights"/> and an optional adapter.</summary>
    public LlamaGraph(LlamaWeights weights, LoraAdapter? adapter, IComputeBackend backend, bool gradientCheckpointing = false)
    {
        _w = weights;
        _c = weights.Config;
        _lora = adapter;
        _be = backend;
        _ropes = RopeTable.PerLayer(_c);
        _checkpointing = gradientCheckpointing;
        _acts = new LayerActivations[gradientCheckpointing ? 1 : _c.NumLayers];
        for (var i = 0; i < _acts.Length; i++) _acts[i] = new LayerActivations();
        _resid = new float[_c.NumLayers + 1][];
        for (var i = 0; i < _resid.Length; i++) _resid[i] = [];
    }

    /// <summary>The kernels this graph runs on.</summary>
    public IComputeBackend Backend => _be;

    /// <summary>Dropout of the LoRA inputs for the current micro-batch; null means no dropout (evaluation, inference).</summary>
    public ulong? DropoutKey { get; set; }

    private int Rank => _lora?.Settings.Rank ?? 0;

    /// <summary>
    /// False multiplies by the frozen weights as they are, without the backend's prepared (packed) copy
    /// of each: the same bytes, half the memory, for a graph that runs only a few forward passes (the
    /// quality gate). True (the default) suits training, which reuses the copies every step.
    /// </summary>
    public bool PrepareFrozenWeights { get; init; } = true;

    /// <summary>y = x Wᵀ for a frozen weight W[n×k], through the backend's prepared form of W (made once per graph) when there is one.</summary>
    private void WeightProduct(float[] x, float[] w, float[] y, int m, int n, int k)
    {
        if (Prepared(w, n, k) is { } prepared) _be.MatMulTransposed(x, 0, w, prepared, y, 0, m, n, k);
        else _be.MatMulTransposed(x, 0, w, 0, y, 0, m, n, k);
    }

    private readonly Dictionary<float[], object?> _preparedBackward = new(ReferenceEqualityComparer.Instance);
    private long _preparedBackwardFloats;

    // The backward pass's forms (W[out×in] as the B of dy·W) are a second copy of the frozen projections:
    // kept only while they add at most 1 GiB, so a larger model packs W per product instead.
    private const long MaxPreparedBackwardFloats = 256L << 20;

    /// <summary>The backend's prepared form of W[n×k] for dx = dy·W, or null (see <see cref="MaxPreparedBackwardFloats"/>).</summary>
    private object? PreparedBackward(float[] w, int n, int k)
    {
        if (!PrepareFrozenWeights) return null;
        if (_preparedBackward.TryGetValue(w, out var prepared)) return prepared;
        if (_preparedBackwardFloats + (long)n * k <= MaxPreparedBackwardFloats)
        {
            prepared = _be.PrepareOperand(w, n, k);
            _preparedBackwardFloats += (long)n * k;
        }
        return _preparedBackward[w] = prepared;
    }

    /// <summary>The backend's prepared form of the frozen W[n×k], or null with <see cref="PrepareFrozenWeights"/> off.</summary>
    private object? Prepared(float[] w, int n, int k)
    {
        if (!PrepareFrozenWeights) return null;
        if (!_prepared.TryGetValue(w, out var prepared)) _prepared[w] = prepared = _be.PrepareTransposedOperand(w, n, k);
        return prepared;
    }

    /// <summary>
    /// False runs the frozen base model alone, with no second copy of the weights: how preference
    /// training computes the reference model's log-probabilities (TRL's <c>disable_adapter()</c>).
    /// Forward only; a backward pass needs the adapter.
    /// </summary>
    public bool AdapterEnabled { get; set; } = true;

    /// <summary>The mean logit (over the vocabulary) of each loss row of the last forward pass, for TRL's <c>logits/*</c> metrics.</summary>
    public double[] LastRowLogitMeans { get; private set; } = [];

    /// <summary>
    /// Forward pass and, when <paramref name="lossScale"/> is non-zero, the backward pass with
    /// d(loss)/d(logit) scaled by it (1 / target tokens of the optimizer step). Returns the sum of
    /// the cross-entropy over <see cref="PackedBatch.LossRows"/>.
    /// </summary>
    public double ForwardBackward(PackedBatch batch, float lossScale)
    {
        var backward = lossScale != 0;
        if (backward && _lora is null) throw new InvalidOperationException("A backward pass needs LoRA adapters to train.");
        Forward(batch);
        var rowLoss = LossAndHeadGradient(batch, backward ? Uniform(batch, lossScale) : null);
        if (backward) Backward(batch);
        return Sum(rowLoss);
    }

    /// <summary>
    /// Forward pass, then <paramref name="rowScales"/> sees the cross-entropy of every loss row and
    /// returns each row's d(loss)/d(cross-entropy) — or null for no backward pass. That is how a loss
    /// over whole sequences (DPO, ORPO) reaches the tokens: it depends on each sequence's summed
    /// log-probability. Returns the rows' cross-entropy.
    /// </summary>
    public double[] ForwardBackwardRows(PackedBatch batch, Func<double[], float[]?> rowScales)
    {
        Forward(batch);
        var rowLoss = LossAndHeadGradient(batch, null);
        if (rowScales(rowLoss) is not { } scales) return rowLoss;
        if (_lora is null || !AdapterEnabled) throw new InvalidOperationException("A backward pass needs LoRA adapters to train.");
        if (scales.Length != rowLoss.Length) throw new ArgumentException("One scale per loss row.", nameof(rowScales));
        // The logits are recomputed chunk by chunk rather than kept: the head's matmul is cheap next to holding rows × vocab floats.
        LossAndHeadGradient(batch, scales);
        Backward(batch);
        return rowLoss;
    }

    private void Backward(PackedBatch batch)
    {
        if (!AdapterEnabled) throw new InvalidOperationException("A backward pass needs the adapter switched on.");
        for (var l = _c.NumLayers - 1; l >= 0; l--)
        {
            var acts = _checkpointing ? _acts[0] : _acts[l];
            if (_checkpointing) LayerForward(batch, l, acts);
            LayerBackward(batch, l, acts);
        }
    }

    private static float[] Uniform(PackedBatch b, float scale)
    {
        var s = new float[b.LossRows.Length];
        Array.Fill(s, scale);
        return s;
    }

    private static double Sum(double[] values)
    {
        var total = 0.0;
        foreach (var x in values) total += x;
        return total;
    }

    /// <summary>Logits [tokens × vocab] of every row of <paramref name="batch"/>.</summary>
    public float[] Logits(PackedBatch batch)
    {
        Forward(batch);
        var n = batch.TokenCount;
        var result = new float[(long)n * _c.VocabSize];
        _be.MatMulTransposed(_finalNorm, 0, _w.LmHead, 0, result, 0, n, _c.VocabSize, _c.HiddenSize);
        return result;
    }

    private void Ensure(PackedBatch b)
    {
        var n = b.TokenCount;
        var probs = b.SeqLengths.Sum(t => (long)t * t) * _c.NumHeads;
        if (probs > int.MaxValue) throw new InvalidOperationException("Batch too large for attention buffers.");
        foreach (var a in _acts) a.Ensure(_c, n, (int)probs, Math.Max(1, Rank));
        if (n <= _capacityTokens) return;
        _capacityTokens = n;
        int h = _c.HiddenSize, big = Math.Max(Math.Max(_c.IntermediateSize, _c.QDim), h);
        for (var i = 0; i < _resid.Length; i++) _resid[i] = new float[n * h];
        _finalNorm = new float[n * h]; _finalRstd = new float[n]; _dResid = new float[n * h]; _dNorm = new float[n * h]; _tmpH = new float[n * h];
        _dQ = new float[n * _c.QDim]; _dK = new float[n * _c.KvDim]; _dV = new float[n * _c.KvDim]; _dAtt = new float[n * _c.QDim];
        _dBig1 = new float[n * big]; _dBig2 = new float[n * big]; _dBig3 = new float[n * big];
        _tT1 = new float[n * big]; _tDrop = new float[n * big];
        _tR = new float[n * Math.Max(1, Rank)];
    }

    private void Forward(PackedBatch b)
    {
        Ensure(b);
        foreach (var rope in _ropes.Distinct()) rope.EnsurePositions(b.Positions.Max() + 1);
        int h = _c.HiddenSize, n = b.TokenCount;
        var x = _resid[0];
        _be.For(n, t =>
        {
            var id = b.Ids[t];
            if ((uint)id >= (uint)_c.VocabSize)
                throw new Core.Diagnostics.FineTuneException("FT3019", $"Token id {id} is outside the model's vocabulary of {_c.VocabSize}; the data was tokenized with another tokenizer.");
            Array.Copy(_w.Embedding, (long)id * h, x, (long)t * h, h);
            if (_c.EmbeddingScale != 1) TensorPrimitives.Multiply(x.AsSpan(t * h, h), _c.EmbeddingScale, x.AsSpan(t * h, h));
        });
        for (var l = 0; l < _c.NumLayers; l++)
            LayerForward(b, l, _checkpointing ? _acts[0] : _acts[l]);
        CpuOps.RmsNorm(_be, _resid[_c.NumLayers], _finalNorm, _finalRstd, _w.FinalNorm, n, h, (float)_c.RmsNormEps);
    }

    private void LayerForward(PackedBatch b, int l, LayerActivations a)
    {
        var lw = _w.Layers[l];
        int n = b.TokenCount, h = _c.HiddenSize;
        var input = _resid[l];
        var output = _resid[l + 1];
        CpuOps.RmsNorm(_be, input, a.Norm1, a.Rstd1, lw.InputNorm, n, h, (float)_c.RmsNormEps);
        Linears(l, QkvProjections, a.Norm1, [a.Q, a.K, a.V], n, a);
        if (_c.QkNorm)
        {
            Array.Copy(a.Q, a.QPre, n * _c.QDim);
            Array.Copy(a.K, a.KPre, n * _c.KvDim);
            CpuOps.RmsNorm(_be, a.QPre, a.Q, a.QRstd, lw.QNorm!, n * _c.NumHeads, _c.HeadDim, (float)_c.RmsNormEps);
            CpuOps.RmsNorm(_be, a.KPre, a.K, a.KRstd, lw.KNorm!, n * _c.NumKvHeads, _c.HeadDim, (float)_c.RmsNormEps);
        }
        Rope(b, l, a.Q, a.K, inverse: false);
        Attention(b, l, a);
        var eps = (float)_c.RmsNormEps;
        if (_c.SandwichNorms)
        {
            Linear(l, Projection.O, a.Att, a.AttOut, n, a);
            CpuOps.RmsNorm(_be, a.AttOut, _tmpH, a.AttOutRstd, lw.AttentionOutNorm!, n, h, eps);
        }
        else Linear(l, Projection.O, a.Att, _tmpH, n, a);
        CpuOps.AddRmsNorm(_be, input, _tmpH, a.X1, a.Norm2, a.Rstd2, lw.PostNorm, n, h, eps);
        Linears(l, GateUpProjections, a.Norm2, [a.Gate, a.Up], n, a);
        CpuOps.GatedActivation(_be, _c, a.Gate, a.Up, a.Act, n);
        if (_c.SandwichNorms)
        {
            Linear(l, Projection.Down, a.Act, a.MlpOut, n, a);
            CpuOps.RmsNorm(_be, a.MlpOut, _tmpH, a.MlpOutRstd, lw.MlpOutNorm!, n, h, eps);
        }
        else Linear(l, Projection.Down, a.Act, _tmpH, n, a);
        CpuOps.Add(_be, a.X1, _tmpH, output, n, h);
    }

    private void LayerBackward(PackedBatch b, int l, LayerActivations a)
    {
        var lw = _w.Layers[l];
        int n = b.TokenCount, h = _c.HiddenSize;
        // _dResid holds d(layer output); it becomes d(X1) and finally d(layer input) in place.
        var dAct = _dBig1;
        // With sandwich norms the projection's output gradient goes back through its norm first (_tmpH is free in the backward pass).
        var dMlpOut = _c.SandwichNorms ? NormBackward(_dResid, a.MlpOut, a.MlpOutRstd, lw.MlpOutNorm!, n) : _dResid;
        LinearBackward(l, Projection.Down, a.Act, dMlpOut, dAct, n, a, accumulate: false);
        var dGate = _dBig2;
        var dUp = _dBig3;
        CpuOps.GatedActivationBackward(_be, _c, dAct, a.Gate, a.Up, dGate, dUp, n);
        LinearBackward(l, Projection.Gate, a.Norm2, dGate, _dNorm, n, a, accumulate: false);
        LinearBackward(l, Projection.Up, a.Norm2, dUp, _dNorm, n, a, accumulate: true);
        CpuOps.RmsNormBackward(_be, _dNorm, a.X1, a.Rstd2, lw.PostNorm, _dResid, n, h, accumulate: true);
        var dAttOut = _c.SandwichNorms ? NormBackward(_dResid, a.AttOut, a.AttOutRstd, lw.AttentionOutNorm!, n) : _dResid;
        LinearBackward(l, Projection.O, a.Att, dAttOut, _dAtt, n, a, accumulate: false);
        AttentionBackward(b, a);
        Rope(b, l, _dQ, _dK, inverse: true);
        if (_c.QkNorm)
        {
            Array.Copy(_dQ, _dBig1, n * _c.QDim);
            CpuOps.RmsNormBackward(_be, _dBig1, a.QPre, a.QRstd, lw.QNorm!, _dQ, n * _c.NumHeads, _c.HeadDim, accumulate: false);
            Array.Copy(_dK, _dBig1, n * _c.KvDim);
            CpuOps.RmsNormBackward(_be, _dBig1, a.KPre, a.KRstd, lw.KNorm!, _dK, n * _c.NumKvHeads, _c.HeadDim, accumulate: false);
        }
        LinearBackward(l, Projection.Q, a.Norm1, _dQ, _dNorm, n, a, accumulate: false);
        LinearBackward(l, Projection.K, a.Norm1, _dK, _dNorm, n, a, accumulate: true);
        LinearBackward(l, Projection.V, a.Norm1, _dV, _dNorm, n, a, accumulate: true);
        CpuOps.RmsNormBackward(_be, _dNorm, _resid[l], a.Rstd1, lw.InputNorm, _dResid, n, h, accumulate: true);
    }

    /// <summary>d(input of a sandwich norm) into _tmpH, from d(its output) <paramref name="dy"/>.</summary>
    private float[] NormBackward(float[] dy, float[] x, float[] rstd, float[] w, int n)
    {
        CpuOps.RmsNormBackward(_be, dy, x, rstd, w, _tmpH, n, _c.HiddenSize, accumulate: false);
        return _tmpH;
    }

    private static readonly Projection[] QkvProjections = [Projection.Q, Projection.K, Projection.V];
    private static readonly Projection[] GateUpProjections = [Projection.Gate, Projection.Up];

    /// <summary>
    /// <see cref="Linear"/> for projections of the same input (q, k, v; gate, up): their LoRA hiddens in one
    /// parallel pass, then their weights with the LoRA paths fused in another, instead of two passes each.
    /// </summary>
    private void Linears(int l, Projection[] projections, float[] x, float[][] ys, int n, LayerActivations a)
    {
        var lw = _w.Layers[l];
        var dropout = DropoutKey is not null && _lora?.Settings.Dropout != 0;
        if (!AdapterEnabled || _lora is null || dropout || projections.Any(p => lw.Bias[(int)p] is not null || _lora.A(l, p) is null))
        {
            for (var i = 0; i < projections.Length; i++) Linear(l, projections[i], x, ys[i], n, a);
            return;
        }
        int r = Rank, inF = projections[0].InFeatures(_c);
        using (_be.Together())
            foreach (var p in projections)
                _be.MatMulTransposed(x, 0, _lora.A(l, p)!.Value, 0, a.LoraHidden[(int)p], 0, n, r, inF);
        foreach (var p in projections)
            Scale(a.LoraHidden[(int)p], n * r);
        using (_be.Together())
            for (var i = 0; i < projections.Length; i++)
            {
                var p = projections[i];
                var w = lw.Linear[(int)p];
                var outF = p.OutFeatures(_c);
                _be.MatMulTransposedThen(x, w, Prepared(w, outF, inF), a.LoraHidden[(int)p], _lora.B(l, p)!.Value, ys[i], n, outF, inF, r);
            }
    }

    /// <summary>y = x Wᵀ + bias + scale · (drop(x) Aᵀ) Bᵀ.</summary>
    private void Linear(int l, Projection p, float[] x, float[] y, int n, LayerActivations a)
    {
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
        var lw = _w.Layers[l];
        if (AdapterEnabled && lw.Bias[(int)p] is null && _lora?.A(l, p) is { } fusedA)
        {
            // y = x Wᵀ, then the LoRA path continues each element's sum: one pass over y.
            var w = lw.Linear[(int)p];
            var h = LoraHidden(l, p, x, n, inF, a, fusedA);
            _be.MatMulTransposedThen(x, w, Prepared(w, outF, inF), h, _lora.B(l, p)!.Value, y, n, outF, inF, Rank);
            return;
        }
        WeightProduct(x, lw.Linear[(int)p], y, n, outF, inF);
        if (lw.Bias[(int)p] is { } bias)
            _be.For(n, t => TensorPrimitives.Add(y.AsSpan(t * outF, outF), bias, y.AsSpan(t * outF, outF)));
        if (!AdapterEnabled || _lora?.A(l, p) is not { } loraA) return;
        var hidden = LoraHidden(l, p, x, n, inF, a, loraA);
        _be.MatMulTransposed(hidden, 0, _lora.B(l, p)!.Value, 0, y, 0, n, outF, Rank, accumulate: true);
    }

    /// <summary>scale · drop(x) Aᵀ [n × r], kept for the backward pass.</summary>
    private float[] LoraHidden(int l, Projection p, float[] x, int n, int inF, LayerActivations a, LoraTensor loraA)
    {
        var r = Rank;
        var hidden = a.LoraHidden[(int)p];
        var xd = Dropped(l, p, x, n, inF);
        _be.MatMulTransposed(xd, 0, loraA.Value, 0, hidden, 0, n, r, inF);
        Scale(hidden, n * r);
        return hidden;
    }

    /// <summary>x[..count] *= the LoRA scale (alpha / rank), on this thread between two parallel passes; nothing to do at 1.</summary>
    private void Scale(float[] x, int count)
    {
        var scale = _lora!.Settings.Scale;
        if (scale != 1f) TensorPrimitives.Multiply(x.AsSpan(0, count), scale, x.AsSpan(0, count));
    }

    /// <summary>dx (+)= dy W + LoRA path; accumulates the adapter's gradients.</summary>
    private void LinearBackward(int l, Projection p, float[] x, float[] dy, float[] dx, int n, LayerActivations a, bool accumulate)
    {
        int inF = p.InFeatures(_c), outF = p.OutFeatures(_c);
        var w = _w.Layers[l].Linear[(int)p];
        if (_lora?.A(l, p) is not { } loraA)
        {
            _be.MatMul(dy, 0, w, 0, dx, 0, n, inF, outF, accumulate);
            return;
        }
        var loraB = _lora.B(l, p)!;
        var r = Rank;
        // Two parallel passes of two independent products each (rather than four passes).
        using (_be.Together())
        {
            // g = scale · dy B  [n × r]
            _be.MatMul(dy, 0, loraB.Value, 0, _tR, 0, n, r, outF);
            // dB += dyᵀ · (scale · A x)
            _be.MatMulTransposedA(dy, 0, a.LoraHidden[(int)p], 0, loraB.Grad, 0, outF, r, n, accumulate: true);
        }
        Scale(_tR, n * r);
        var dropout = DropoutKey is not null && _lora.Settings.Dropout != 0;
        var xd = Dropped(l, p, x, n, inF);
        using (_be.Together())
        {
            // dx (+)= dy W, then (without dropout) g A continues each element's sum in the same pass.
            if (dropout) _be.MatMul(dy, 0, w, 0, dx, 0, n, inF, outF, accumulate);
            else _be.MatMulThen(dy, w, _tR, loraA.Value, dx, n, inF, outF, r, accumulate, PreparedBackward(w, outF, inF));
            // dA += gᵀ · drop(x)
            _be.MatMulTransposedA(_tR, 0, xd, 0, loraA.Grad, 0, r, inF, n, accumulate: true);
        }
        if (!dropout) return;
        // dx += drop'(g A)
        _be.MatMul(_tR, 0, loraA.Value, 0, _tT1, 0, n, inF, r);
        ApplyDropout(l, p, _tT1, _tT1, n, inF);
        TensorPrimitives.Add(dx.AsSpan(0, n * inF), _tT1.AsSpan(0, n * inF), dx.AsSpan(0, n * inF));
    }

    private float[] Dropped(int l, Projection p, float[] x, int n, int inF)
    {
        if (DropoutKey is null || _lora!.Settings.Dropout == 0) return x;
        ApplyDropout(l, p, x, _tDrop, n, inF);
        return _tDrop;
    }

    /// <summary>Inverted dropout with a counter-based mask, so recomputation (checkpointing) and resumption see the same mask.</summary>
    private void ApplyDropout(int l, Projection p, float[] src, float[] dst, int n, int inF)
    {
        var rate = _lora!.Settings.Dropout;
        var keepScale = (float)(1 / (1 - rate));
        var key = DeterministicRandom.Mix(DropoutKey!.Value ^ ((ulong)l << 40) ^ ((ulong)p << 56));
        _be.For(n, t =>
        {
            for (var i = t * inF; i < (t + 1) * inF; i++)
            {
                var u = (DeterministicRandom.Mix(key + (ulong)i) >> 11) * (1.0 / (1UL << 53));
                dst[i] = u < rate ? 0 : src[i] * keepScale;
            }
        });
    }

    /// <summary>Rotates q's and k's heads (or their gradients) in one parallel pass over the tokens.</summary>
    private void Rope(PackedBatch b, int l, float[] q, float[] k, bool inverse)
    {
        int hd = _c.HeadDim, nh = _c.NumHeads, nkv = _c.NumKvHeads;
        var rope = _ropes[l];
        _be.For(b.TokenCount, t =>
        {
            for (var hh = 0; hh < nh; hh++)
                rope.Apply(q.AsSpan((t * nh + hh) * hd, hd), b.Positions[t], inverse);
            for (var hh = 0; hh < nkv; hh++)
                rope.Apply(k.AsSpan((t * nkv + hh) * hd, hd), b.Positions[t], inverse);
        });
    }

    private long ProbsOffset(PackedBatch b, int seq) =>
        b.SeqLengths.Take(seq).Sum(t => (long)t * t) * _c.NumHeads;

    private const int AttentionBlock = 32;

    private PackedBatch? _tasksFor;
    private (int Seq, int Head, int Row)[] _queryTasks = [], _keyTasks = [];
    private long[] _probsOffsets = [];

    /// <summary>The attention tasks and probability offsets of <paramref name="b"/>, made once per batch rather than per layer.</summary>
    private ((int Seq, int Head, int Row)[] Query, (int Seq, int Head, int Row)[] Key, long[] Offsets) Plan(PackedBatch b)
    {
        if (!ReferenceEquals(_tasksFor, b))
        {
            _queryTasks = AttentionTasks(b, _c.NumHeads);
            _keyTasks = AttentionTasks(b, _c.NumKvHeads);
            _probsOffsets = Enumerable.Range(0, b.SeqStarts.Length).Select(s => ProbsOffset(b, s)).ToArray();
            _tasksFor = b;
        }
        return (_queryTasks, _keyTasks, _probsOffsets);
    }

    /// <summary>(sequence, head, first row) of every block of <see cref="AttentionBlock"/> rows, longest work first.</summary>
    private static (int Seq, int Head, int Row)[] AttentionTasks(PackedBatch b, int heads) =>
        Enumerable.Range(0, b.SeqStarts.Length)
            .SelectMany(s => Enumerable.Range(0, heads).SelectMany(h =>
                Enumerable.Range(0, (b.SeqLengths[s] + AttentionBlock - 1) / AttentionBlock).Select(r => (s, h, r * AttentionBlock))))
            .OrderByDescending(t => b.SeqLengths[t.s]).ThenByDescending(t => t.Item3)
            .ToArray();

    /// <summary>
    /// Causal attention; on a sliding-window layer query i sees keys i − window + 1 .. i (transformers'
    /// and llama.cpp's window). Probabilities outside the window stay zero, which is all the backward
    /// pass needs to know about the window. Each task takes a block of query rows of one head: scores
    /// and the weighted sum of values are two small matrix products over that block.
    /// </summary>
    private void Attention(PackedBatch b, int l, LayerActivations a)
    {
        int nh = _c.NumHeads, hd = _c.HeadDim, group = nh / _c.NumKvHeads, qd = _c.QDim, kvd = _c.KvDim;
        var scale = _c.AttentionScale;
        var window = _c.IsSlidingLayer(l) ? _c.SlidingWindow!.Value : int.MaxValue;
        var (tasks, _, offsets) = Plan(b);
        _be.For(tasks.Length, task =>
        {
            var (s, head, i0) = tasks[task];
            int kvh = head / group, start = b.SeqStarts[s], T = b.SeqLengths[s], i1 = Math.Min(T, i0 + AttentionBlock);
            var pOff = offsets[s] + (long)head * T * T;
            // Scores of rows i0..i1 against keys 0..i1 (later keys are masked below).
            Gemm.Serial(new GemmProblem(a.Q, (long)(start + i0) * qd + head * hd, qd, 1, a.K, (long)start * kvd + kvh * hd, kvd, 1,
                a.Probs, pOff + (long)i0 * T, T, i1 - i0, i1, hd, false));
            for (var i = i0; i < i1; i++)
            {
                var row = a.Probs.AsSpan((int)(pOff + (long)i * T), T);
                var first = Math.Max(0, i - window + 1);
                row[..first].Clear();
                var causal = row[first..(i + 1)];
                TensorPrimitives.Multiply(causal, scale, causal);
                var max = TensorPrimitives.Max(causal);
                TensorPrimitives.Subtract(causal, max, causal);
                TensorPrimitives.Exp(causal, causal);
                TensorPrimitives.Multiply(causal, 1f / TensorPrimitives.Sum(causal), causal);
                row[(i + 1)..].Clear();
            }
            Gemm.Serial(new GemmProblem(a.Probs, pOff + (long)i0 * T, T, 1, a.V, (long)start * kvd + kvh * hd, 1, kvd,
                a.Att, (long)(start + i0) * qd + head * hd, qd, i1 - i0, hd, i1, false));
        });
    }

    /// <summary>
    /// Two passes so that every task owns what it writes: per block of query rows, d(scores) and dQ;
    /// then per block of key rows, dK and dV summed over the query rows and the heads sharing the key.
    /// </summary>
    private void AttentionBackward(PackedBatch b, LayerActivations a)
    {
        int nh = _c.NumHeads, nkv = _c.NumKvHeads, hd = _c.HeadDim, group = nh / nkv, qd = _c.QDim, kvd = _c.KvDim;
        var scale = _c.AttentionScale;
        var (queryTasks, keyTasks, offsets) = Plan(b);
        LayerActivations.Grow(ref _dProbs, a.Probs.Length);
        var dProbs = _dProbs;
        _be.For(queryTasks.Length, task =>
        {
            var (s, head, i0) = queryTasks[task];
            int kvh = head / group, start = b.SeqStarts[s], T = b.SeqLengths[s], i1 = Math.Min(T, i0 + AttentionBlock);
            var pOff = offsets[s] + (long)head * T * T;
            // d(probabilities) = dO · Vᵀ for rows i0..i1 against keys 0..i1.
            Gemm.Serial(new GemmProblem(_dAtt, (long)(start + i0) * qd + head * hd, qd, 1, a.V, (long)start * kvd + kvh * hd, kvd, 1,
                dProbs, pOff + (long)i0 * T, T, i1 - i0, i1, hd, false));
            for (var i = i0; i < i1; i++)
            {
                var p = a.Probs.AsSpan((int)(pOff + (long)i * T), i + 1);
                var ds = dProbs.AsSpan((int)(pOff + (long)i * T), T);
                var sum = TensorPrimitives.Dot(p, ds[..(i + 1)]);
                for (var j = 0; j <= i; j++) ds[j] = p[j] * (ds[j] - sum) * scale;
                ds[(i + 1)..].Clear();
            }
            Gemm.Serial(new GemmProblem(dProbs, pOff + (long)i0 * T, T, 1, a.K, (long)start * kvd + kvh * hd, 1, kvd,
                _dQ, (long)(start + i0) * qd + head * hd, qd, i1 - i0, hd, i1, false));
        });
        _be.For(keyTasks.Length, task =>
        {
            var (s, kvh, j0) = keyTasks[task];
            int start = b.SeqStarts[s], T = b.SeqLengths[s], j1 = Math.Min(T, j0 + AttentionBlock);
            var dkOff = (long)(start + j0) * kvd + kvh * hd;
            for (var head = kvh * group; head < (kvh + 1) * group; head++)
            {
                var pOff = offsets[s] + (long)head * T * T + (long)j0 * T + j0;
                var rowsOff = (long)(start + j0) * qd + head * hd;
                // Queries before j0 cannot see these keys, so the sums start at query j0.
                Gemm.Serial(new GemmProblem(dProbs, pOff, 1, T, a.Q, rowsOff, 1, qd, _dK, dkOff, kvd, j1 - j0, hd, T - j0, head > kvh * group));
                Gemm.Serial(new GemmProblem(a.Probs, pOff, 1, T, _dAtt, rowsOff, 1, qd, _dV, dkOff, kvd, j1 - j0, hd, T - j0, head > kvh * group));
            }
        });
    }

    /// <summary>Loss rows whose logits the CPU head holds at once (for memory estimates such as the quality gate's).</summary>
    public static int LossChunkRows(int vocab) => HeadCrossEntropy.ChunkRows(vocab);

    /// <summary>Cross-entropy of each loss row, a chunk of rows at a time; with per-row scales, also d(final norm) and d(residual).</summary>
    private double[] LossAndHeadGradient(PackedBatch b, float[]? scales)
    {
        int h = _c.HiddenSize, vocab = _c.VocabSize, n = b.TokenCount;
        var rows = b.LossRows;
        var rowLoss = new double[rows.Length];
        var logitMeans = scales is null ? new double[rows.Length] : null;
        if (scales is not null) Array.Clear(_dNorm, 0, n * h);
        var chunk = HeadCrossEntropy.ChunkRows(vocab);
        // Chunks of equal size (whole register tiles) rather than full ones and a short last one: each
        // chunk makes three parallel passes over the whole vocabulary. A row's bytes do not depend on its chunk.
        var chunks = Math.Max(1, (rows.Length + chunk - 1) / chunk);
        var tile = GemmKernels.Rows;
        chunk = Math.Min(chunk, ((rows.Length + chunks - 1) / chunks + tile - 1) / tile * tile);
        LayerActivations.Grow(ref _gather, chunk * h);
        LayerActivations.Grow(ref _dGather, chunk * h);
        var head = Prepared(_w.LmHead, vocab, h) as PackedPanels;
        for (var c0 = 0; c0 < rows.Length; c0 += chunk)
        {
            var m = Math.Min(chunk, rows.Length - c0);
            for (var i = 0; i < m; i++) Array.Copy(_finalNorm, rows[c0 + i] * h, _gather, i * h, h);
            HeadCrossEntropy.Run(_be, _gather, _w.LmHead, head, m, h, vocab, b.LossTargets, c0, scales, rowLoss, logitMeans, _dGather, _head);
            if (scales is null) continue;
            for (var i = 0; i < m; i++) Array.Copy(_dGather, i * h, _dNorm, rows[c0 + i] * h, h);
        }
        if (scales is not null)
            CpuOps.RmsNormBackward(_be, _dNorm, _resid[_c.NumLayers], _finalRstd, _w.FinalNorm, _dResid, n, h, accumulate: false);
        else LastRowLogitMeans = logitMeans!;
        return rowLoss;
    }
}
