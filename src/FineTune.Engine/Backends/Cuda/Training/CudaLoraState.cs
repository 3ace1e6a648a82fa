using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// The trainable LoRA state on the GPU: fp32 master values, gradients and AdamW moments, each one
/// contiguous buffer over all adapter tensors (so clipping, the norm and AdamW are one launch each),
/// plus a bf16 copy of the values that the matrix products read. Tensors start at 256-byte
/// boundaries, the alignment cuBLASLt's algorithms may assume.
/// </summary>
internal sealed class CudaLoraState : IDisposable
{
    private const int Align = 128; // elements: 256 bytes of bf16
    private readonly CudaTrainingContext _ctx;
    private readonly long[] _offsets;
    private readonly int[,] _aIndex, _bIndex;

    public CudaLoraState(CudaTrainingContext ctx, LoraAdapter adapter)
    {
        _ctx = ctx;
        Settings = adapter.Settings;
        var layers = adapter.Config.NumLayers;
        _aIndex = new int[layers, Projections.All.Length];
        _bIndex = new int[layers, Projections.All.Length];
        for (var l = 0; l < layers; l++)
            for (var p = 0; p < Projections.All.Length; p++) _aIndex[l, p] = _bIndex[l, p] = -1;
        var index = new Dictionary<LoraTensor, int>();
        for (var i = 0; i < adapter.Tensors.Count; i++) index[adapter.Tensors[i]] = i;
        for (var l = 0; l < layers; l++)
            foreach (var p in Settings.Targets)
            {
                _aIndex[l, (int)p] = index[adapter.A(l, p)!];
                _bIndex[l, (int)p] = index[adapter.B(l, p)!];
            }
        // Each layer's A tensors first, then its B tensors (targets in projection order): q/k/v's A
        // are one [3r, hidden] matrix and gate/up's one [2r, hidden], so their LoRA down-projections,
        // input gradients and A gradients run as one product each (r · in is a multiple of the
        // alignment at every supported shape, so no padding splits them; HasGroup checks). The
        // layer's first adapter tensor still starts its region, which gradient buckets rely on.
        _offsets = new long[adapter.Tensors.Count + 1];
        long next = 0;
        for (var l = 0; l < layers; l++)
            foreach (var matrices in new[] { _aIndex, _bIndex })
                foreach (var p in Settings.Targets)
                {
                    var i = matrices[l, (int)p];
                    _offsets[i] = next;
                    next += (adapter.Tensors[i].Value.LongLength + Align - 1) / Align * Align;
                }
        _offsets[^1] = next;
        Count = next;
        if (Count > int.MaxValue) throw new InvalidOperationException("The adapter has more than 2^31 values.");
        var pool = ctx.Device.Memory;
        Values = pool.Allocate(Count * 4);
        Grads = pool.Allocate(Count * 4);
        M = pool.Allocate(Count * 4);
        V = pool.Allocate(Count * 4);
        ValuesBf16 = pool.Allocate(Count * 2);
        Scratch = pool.Allocate(ctx.Kernels.SumSquaresPartials * 4L + 4);
        // The padding between tensors must hold zeros: it enters the norm and AdamW (harmlessly, as zeros).
        foreach (var b in new[] { Values, Grads, M, V, ValuesBf16 }) b.FillBytes(0);
        Load(adapter);
    }

    public LoraSettings Settings { get; }
    /// <summary>Where each adapter tensor starts in the buffers (elements; layer by layer, A tensors before B), and the buffers' length last.</summary>
    public IReadOnlyList<long> Offsets => _offsets;
    /// <summary>Values in each buffer, padding included.</summary>
    public long Count { get; }
    public DeviceBuffer Values { get; }
    public DeviceBuffer Grads { get; }
    public DeviceBuffer M { get; }
    public DeviceBuffer V { get; }
    public DeviceBuffer ValuesBf16 { get; }
    private DeviceBuffer Scratch { get; }

    /// <summary>Bytes the state takes for <paramref name="parameters"/> trainable values: 4 fp32 buffers and a bf16 copy.</summary>
    public static long BytesFor(long parameters) => parameters * 18;

    public bool Has(int layer, Projection p) => _aIndex[layer, (int)p] >= 0;

    /// <summary>
    /// Whether every one of <paramref name="members"/> has an adapter in <paramref name="layer"/> and their
    /// A matrices lie back to back, so they form one <c>[members · r, in]</c> matrix (values, bf16 copy and gradients).
    /// </summary>
    public bool HasGroup(int layer, IReadOnlyList<Projection> members, int inFeatures)
    {
        if (members.Count < 2 || !members.All(p => Has(layer, p))) return false;
        var size = (long)Settings.Rank * inFeatures;
        for (var i = 1; i < members.Count; i++)
            if (_offsets[_aIndex[layer, (int)members[i]]] != _offsets[_aIndex[layer, (int)members[0]]] + i * size) return false;
        return true;
    }
    public ulong A(int layer, Projection p) => ValuesBf16.Pointer + (ulong)(_offsets[_aIndex[layer, (int)p]] * 2);
    public ulong B(int layer, Projection p) => ValuesBf16.Pointer + (ulong)(_offsets[_bIndex[layer, (int)p]] * 2);
    public ulong GradA(int layer, Projection p) => Grads.Pointer + (ulong)(_offsets[_aIndex[layer, (int)p]] * 4);
    public ulong GradB(int layer, Projection p) => Grads.Pointer + (ulong)(_offsets[_bIndex[layer, (int)p]] * 4);

    /// <summary>Uploads values and moments from <paramref name="adapter"/> and refreshes the bf16 copy.</summary>
    public void Load(LoraAdapter adapter)
    {
        var values = new float[Count];
        var m = new float[Count];
        var v = new float[Count];
        for (var i = 0; i < adapter.Tensors.Count; i++)
        {
            var t = adapter.Tensors[i];
            t.Value.CopyTo(values, _offsets[i]);
            t.M.CopyTo(m, _offsets[i]);
            t.V.CopyTo(v, _offsets[i]);
        }
        Values.Upload<float>(values);
        M.Upload<float>(m);
        V.Upload<float>(v);
        RefreshBf16();
    }

    /// <summary>Downloads values and moments into <paramref name="adapter"/>.</summary>
    public void CopyTo(LoraAdapter adapter)
    {
        var values = Values.Download<float>();
        var m = M.Download<float>();
        var v = V.Download<float>();
        for (var i = 0; i < adapter.Tensors.Count; i++)
        {
            var t = adapter.Tensors[i];
            var n = t.Value.Length;
            values.AsSpan((int)_offsets[i], n).CopyTo(t.Value);
            m.AsSpan((int)_offsets[i], n).CopyTo(t.M);
            v.AsSpan((int)_offsets[i], n).CopyTo(t.V);
        }
    }

    public void ZeroGradients() => Grads.FillBytes(0);

    /// <summary>The global gradient norm: a two-stage sum of squares in a fixed order (no atomics).</summary>
    public double GradNorm()
    {
        var result = Scratch.Pointer + (ulong)(_ctx.Kernels.SumSquaresPartials * 4);
        _ctx.Kernels.SumSquares(result, Grads.Pointer, (int)Count, Scratch.Pointer);
        var sum = new float[1];
        _ctx.Download<float>(sum, result);
        return Math.Sqrt(sum[0]);
    }

    /// <summary>Clips (as torch.nn.utils.clip_grad_norm_) inside the AdamW launch; the bf16 copy is the caller's to refresh (<see cref="RefreshBf16"/>).</summary>
    public void ClipAndStep(double gradNorm, double maxGradNorm, int step, double lr, Core.Config.TrainingConfig cfg)
    {
        var coef = maxGradNorm > 0 ? maxGradNorm / (gradNorm + 1e-6) : 1;
        var scale = coef < 1 ? (float)coef : 1f;
        _ctx.Kernels.AdamW(Values.Pointer, Grads.Pointer, M.Pointer, V.Pointer, (int)Count, step, (float)lr,
            (float)cfg.AdamBeta1, (float)cfg.AdamBeta2, (float)cfg.AdamEpsilon, (float)cfg.WeightDecay, scale);
    }

    /// <summary>Rewrites the bf16 copy the products read from the fp32 values (after loading and after every optimizer step).</summary>
    public void RefreshBf16() => _ctx.Kernels.Float32ToBFloat16(ValuesBf16.Pointer, Values.Pointer, Count);

    public void Dispose()
    {
        foreach (var b in new[] { Values, Grads, M, V, ValuesBf16, Scratch }) b.Dispose();
    }
}
