using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>Device buffers allocated together and released together.</summary>
internal sealed class BufferSet(CudaMemoryPool pool) : IDisposable
{
    private readonly List<DeviceBuffer> _buffers = [];

    public ulong Bf16(long count) => Add(count * 2);
    public ulong F32(long count) => Add(count * 4);
    public ulong I32(long count) => Add(count * 4);

    private ulong Add(long bytes)
    {
        var b = pool.Allocate(Math.Max(bytes, 16));
        _buffers.Add(b);
        return b.Pointer;
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }
}

/// <summary>
/// What one layer's forward pass keeps for its backward pass (see <see cref="GpuMemoryPlan.LayerBytes"/>),
/// for up to <c>tokens</c> rows. With gradient checkpointing one set of recomputed tensors serves
/// every layer, and each layer keeps its own attention output, log-sum-exp and post-attention
/// residual, and its q, k, v (<see cref="GpuMemoryPlan.KeptBytes"/>), so the recompute skips attention,
/// o_proj and q/k/v's base products, and o_proj's and down_proj's LoRA hidden values (<see cref="GpuMemoryPlan.KeepsLoraHiddens"/>).
/// </summary>
internal sealed class CudaActivations
{
    /// <summary>The projections whose LoRA hidden values each layer keeps under selective checkpointing (<see cref="GpuMemoryPlan.KeepsLoraHiddens"/>).</summary>
    public static readonly Projection[] KeptLoraHiddens = [Projection.O, Projection.Down];

    // kept: false for the shared set under checkpointing, whose Att, Lse and X1 come from each layer's view;
    // keptQkv: its q, k, v (and q/k norm tensors) too.
    /// <remarks><paramref name="norm1Stride"/>, <paramref name="norm2Stride"/>: the norms' row strides; above hidden, q/k/v's and gate/up's
    /// hidden values live in their spare columns (CudaTrainingModel.SpareColumns), the columns after them zero.</remarks>
    /// <remarks><paramref name="sharedGluOutput"/>: the one h buffer every layer writes (<see cref="GpuMemoryPlan.SharesGluOutput"/>), 0 to allocate this layer's own.</remarks>
    /// <remarks><paramref name="keptHiddens"/>: the shared set leaves o_proj's and down_proj's hidden values to each layer's view (<see cref="GpuMemoryPlan.KeepsLoraHiddens"/>).</remarks>
    public CudaActivations(BufferSet b, ModelConfig c, int tokens, int rank, IReadOnlyList<Projection> targets, int norm1Stride, int norm2Stride, bool kept = true, ulong sharedGluOutput = 0, bool keptQkv = false,
        bool keptHiddens = false)
    {
        long n = tokens, h = c.HiddenSize;
        Norm1 = b.Bf16(n * norm1Stride); Rstd1 = b.F32(n);
        if (!keptQkv) (Q, K, V, QPre, KPre, QRstd, KRstd) = Qkv(b, c, n);
        if (kept) (Att, Lse, X1) = Kept(b, c, n);
        Norm2 = b.Bf16(n * norm2Stride); Rstd2 = b.F32(n);
        foreach (var (x, stride, group) in new[] { (Norm1, norm1Stride, new[] { Projection.Q, Projection.K, Projection.V }), (Norm2, norm2Stride, new[] { Projection.Gate, Projection.Up }) })
        {
            if (stride == h) continue;
            for (var i = 0; i < group.Length; i++)
            {
                LoraHidden[(int)group[i]] = x + (ulong)((h + i * rank) * 2);
                LoraHiddenStride[(int)group[i]] = stride;
            }
        }
        // With gate/up's weights in one buffer (spare columns on), one product writes [gate | up] rows.
        if (norm2Stride > h) (Gate, Up) = (b.Bf16(2 * n * c.IntermediateSize), 0);
        else (Gate, Up) = (b.Bf16(n * c.IntermediateSize), b.Bf16(n * c.IntermediateSize));
        if (Up == 0) Up = Gate + (ulong)(c.IntermediateSize * 2);
        Act = sharedGluOutput != 0 ? sharedGluOutput : b.Bf16(n * c.IntermediateSize);
        if (c.SandwichNorms)
        {
            AttOut = b.Bf16(n * h); AttOutRstd = b.F32(n);
            MlpOut = b.Bf16(n * h); MlpOutRstd = b.F32(n);
        }
        foreach (var p in targets)
        {
            if (LoraHidden[(int)p] != 0 || keptHiddens && KeptLoraHiddens.Contains(p)) continue;
            // A fully targeted group's hidden values share one [n, members · r] buffer (LoraGroups).
            var group = LoraGroups.AllTargeted(p, targets) ? LoraGroups.Of(p) : [p];
            var buffer = b.Bf16(n * rank * group.Count);
            for (var i = 0; i < group.Count; i++)
            {
                LoraHidden[(int)group[i]] = buffer + (ulong)(i * rank * 2);
                LoraHiddenStride[(int)group[i]] = group.Count * rank;
            }
        }
    }

    /// <summary>
    /// One layer's view under checkpointing: its own kept tensors (with <paramref name="keptQkv"/> q, k, v too, and the LoRA hidden
    /// values of <paramref name="keptHiddens"/>, o_proj's and down_proj's where adapted), everything else <paramref name="shared"/>'s.
    /// </summary>
    public CudaActivations(CudaActivations shared, BufferSet b, ModelConfig c, int tokens, int rank, bool keptQkv, IReadOnlyCollection<Projection> keptHiddens)
    {
        (Norm1, Rstd1, Norm2, Rstd2, Gate, Up, Act) = (shared.Norm1, shared.Rstd1, shared.Norm2, shared.Rstd2, shared.Gate, shared.Up, shared.Act);
        (Q, K, V, QPre, KPre, QRstd, KRstd) = keptQkv ? Qkv(b, c, tokens) : (shared.Q, shared.K, shared.V, shared.QPre, shared.KPre, shared.QRstd, shared.KRstd);
        (AttOut, AttOutRstd, MlpOut, MlpOutRstd) = (shared.AttOut, shared.AttOutRstd, shared.MlpOut, shared.MlpOutRstd);
        LoraHidden = [.. shared.LoraHidden];
        LoraHiddenStride = [.. shared.LoraHiddenStride];
        foreach (var p in keptHiddens)
        {
            LoraHidden[(int)p] = b.Bf16((long)tokens * rank);
            LoraHiddenStride[(int)p] = rank;
        }
        (Att, Lse, X1) = Kept(b, c, tokens);
    }

    private static (ulong Att, ulong Lse, ulong X1) Kept(BufferSet b, ModelConfig c, long n) =>
        (b.Bf16(n * c.QDim), b.F32(n * c.NumHeads), b.Bf16(n * c.HiddenSize));

    /// <summary>q, k, v and, with q/k norms, the norms' inputs and rstd (<see cref="GpuMemoryPlan.QkvBytes"/>).</summary>
    private static (ulong Q, ulong K, ulong V, ulong QPre, ulong KPre, ulong QRstd, ulong KRstd) Qkv(BufferSet b, ModelConfig c, long n) =>
        (b.Bf16(n * c.QDim), b.Bf16(n * c.KvDim), b.Bf16(n * c.KvDim),
         c.QkNorm ? b.Bf16(n * c.QDim) : 0, c.QkNorm ? b.Bf16(n * c.KvDim) : 0, c.QkNorm ? b.F32(n * c.NumHeads) : 0, c.QkNorm ? b.F32(n * c.NumKvHeads) : 0);

    public readonly ulong Norm1, Rstd1, Q, K, V, Att, Lse, X1, Norm2, Rstd2, Gate, Up, Act, QPre, KPre, QRstd, KRstd;
    /// <summary>o_proj's and down_proj's outputs before their sandwich norms, and those norms' rstd (Gemma 3).</summary>
    public readonly ulong AttOut, AttOutRstd, MlpOut, MlpOutRstd;
    /// <summary>scale · (drop(x) Aᵀ) per targeted projection.</summary>
    public readonly ulong[] LoraHidden = new ulong[Projections.All.Length];
    /// <summary>The row stride (elements) of each <see cref="LoraHidden"/>: r, or members · r inside a group's buffer.</summary>
    public readonly int[] LoraHiddenStride = new int[Projections.All.Length];
}

/// <summary>Scratch shared by all layers (see <see cref="GpuMemoryPlan.WorkspaceBytesPerToken"/>).</summary>
internal sealed class CudaWorkspace
{
    /// <remarks><paramref name="residStride"/>: DResid's row stride, hidden + r when o/down's input gradients are fused (spare columns for their g).</remarks>
    public CudaWorkspace(BufferSet b, ModelConfig c, int tokens, int rank, int residStride)
    {
        long n = tokens, h = c.HiddenSize, i = c.IntermediateSize;
        DAct = b.Bf16(n * i);
        DResid = b.Bf16(n * residStride); DNorm = b.Bf16(n * h);
        DQ = b.Bf16(n * c.QDim); DAtt = b.Bf16(n * c.QDim);
        DK = b.Bf16(n * c.KvDim); DV = b.Bf16(n * c.KvDim);
        Scratch = b.Bf16(n * GpuMemoryPlan.ScratchWidth(c, rank));
        LoraG = b.Bf16(n * Math.Max(1, rank) * LoraGroups.MaxMembers);
        FinalNorm = b.Bf16(n * h);
        FinalRstd = b.F32(n); Delta = b.F32(n * c.NumHeads); Loss = b.F32(n); RowScale = b.F32(n); LogitSum = b.F32(n);
        Ids = b.I32(n); Positions = b.I32(n); Targets = b.I32(n); LossRows = b.I32(n);
        if (c.QkNorm)
        {
            DQPre = b.Bf16(n * c.QDim);
            DKPre = b.Bf16(n * c.KvDim);
        }
    }

    public readonly ulong DAct, DResid, DNorm, DQ, DAtt, DK, DV, Scratch, LoraG, FinalNorm, FinalRstd, Delta, Loss, Ids, Positions, Targets, LossRows, DQPre, DKPre;
    /// <summary>Preference training: each loss row's d(loss)/d(cross-entropy), and its sum of logits (TRL's logits/* metrics).</summary>
    public readonly ulong RowScale, LogitSum;
}
