using FineTune.Core.Config;
using FineTune.Engine.Backends.Cuda.Blas;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Training;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// A Llama-family model (Gemma 3 included: scaled embeddings, (1 + w) norms, sandwich norms,
/// GeGLU, sliding-window layers with their own RoPE base) training LoRA adapters on one GPU: bf16 frozen base weights, fp32 LoRA
/// master weights with AdamW state, bf16 activations. The same explicit forward/backward as the
/// CPU <see cref="LlamaGraph"/> (the reference it is tested against), over device buffers allocated
/// once for the largest batch (<see cref="GpuMemoryPlan"/>). Matrix products run on cuBLASLt with
/// fp32 accumulation; LoRA products accumulate into the base product's output (beta = 1), run as one
/// product per group of projections sharing an input (<see cref="LoraGroups"/>), gate/up's up-projection
/// and o/down's LoRA input gradient ride in the base product (<see cref="SpareColumnLinear"/>,
/// <see cref="StackedLinearBackward"/>); residual
/// connections ride in the products' addend, so no full-size copy is made. Every
/// reduction has a fixed order: two runs give the same bits.
/// </summary>
public sealed partial class CudaTrainingModel : ITrainingModel
{
    /// <summary>Sequence lengths are padded to a multiple of this, so few distinct GEMM shapes are planned.</summary>
    public const int SequenceMultiple = 16;

    private readonly CudaTrainingContext _ctx;
    private readonly CudaModelWeights _w;
    private readonly bool _ownsWeights;
    private readonly ModelConfig _c;
    private readonly CudaLoraState _lora;
    private readonly TrainingConfig _cfg;
    private readonly BufferSet _buffers;
    private readonly CudaActivations[] _acts;
    private readonly ulong[]? _resid;
    private readonly OffloadedResiduals? _offload;
    private readonly CudaWorkspace _ws;
    private readonly LmHeadCrossEntropy _head;
    private readonly ulong _invFreq, _invFreqLocal;
    private readonly ulong _dequantized;
    private readonly int _capacity;
    private readonly float _scale;
    private readonly int _rank;
    private readonly IReadOnlyList<int> _adapterLayers;

    /// <summary>Uploads <paramref name="adapter"/>'s values and moments and allocates every buffer of <paramref name="plan"/>.</summary>
    internal CudaTrainingModel(CudaTrainingContext ctx, CudaModelWeights weights, bool ownsWeights, LoraAdapter adapter, TrainingConfig config, GpuMemoryPlan plan)
    {
        _ctx = ctx;
        _w = weights;
        _ownsWeights = ownsWeights;
        _c = weights.Config;
        _cfg = config;
        Plan = plan;
        if (!Supports(_c, out var reason))
            throw new Core.Diagnostics.FineTuneException(CudaErrors.UnsupportedShape, $"The CUDA backend needs {reason}; use --device cpu for this model.");
        _lora = new CudaLoraState(ctx, adapter);
        _adapterLayers = adapter.TensorLayers;
        _rank = adapter.Settings.Rank;
        _scale = adapter.Settings.Scale;
        _capacity = (int)plan.Tokens;
        StackA(adapter.Settings, plan.FourBit is not null);
        AddSpareColumns(adapter.Settings, plan.FourBit is not null);
        RefreshAdapterCopies();
        _buffers = new BufferSet(ctx.Device.Memory);
        _acts = new CudaActivations[_c.NumLayers];
        // A layer's own activations as without checkpointing, h in the one buffer the layers share (GpuMemoryPlan.SharesGluOutput) or its own (0).
        CudaActivations Own(ulong sharedH) => new(_buffers, _c, _capacity, _rank, adapter.Settings.Targets, _norm1Stride, _norm2Stride, sharedGluOutput: sharedH);
        if (plan.KeepsAttention)
        {
            var shared = new CudaActivations(_buffers, _c, _capacity, _rank, adapter.Settings.Targets, _norm1Stride, _norm2Stride, kept: false, keptQkv: plan.KeepsQkv, keptHiddens: plan.KeepsLoraHiddens);
            Projection[] hiddens = plan.KeepsLoraHiddens ? [.. CudaActivations.KeptLoraHiddens.Where(adapter.Settings.Targets.Contains)] : [];
            for (var i = 0; i < _acts.Length; i++)
                _acts[i] = plan.Recomputes(i, _c.NumLayers)
                    ? new CudaActivations(shared, _buffers, _c, _capacity, _rank, plan.KeepsQkv, hiddens)
                    // A layer kept whole (GpuMemoryPlan.WholeLayers) holds everything, h in the recompute set's buffer.
                    : Own(shared.Act);
        }
        // Checkpointing that keeps nothing for speed: one set, recomputed for every layer.
        else if (plan.GradientCheckpointing) Array.Fill(_acts, Own(0));
        else
        {
            var h = plan.SharesGluOutput ? _buffers.Bf16((long)_capacity * _c.IntermediateSize) : 0;
            for (var i = 0; i < _acts.Length; i++) _acts[i] = Own(h);
        }
        ZeroSpareColumns();
        if (plan.OffloadCheckpoints)
            _offload = new OffloadedResiduals(ctx.Device, _buffers, _c.NumLayers, _capacity, _c.HiddenSize);
        else
        {
            _resid = new ulong[_c.NumLayers + 1];
            for (var i = 0; i < _resid.Length; i++) _resid[i] = _buffers.Bf16((long)_capacity * _c.HiddenSize);
        }
        _ws = new CudaWorkspace(_buffers, _c, _capacity, _rank, _dResidStride);
        _varlenTables = _buffers.I32((VarlenAttention.BytesFor(_capacity) + 3) / 4);
        _head = new LmHeadCrossEntropy(ctx.Kernels, _capacity, _c.HiddenSize, _c.VocabSize);
        if (plan.FourBit is not null) _dequantized = _buffers.Bf16(CudaModelWeights.LargestProjection(_c));
        _invFreq = UploadFrequencies(new RopeTable(_c));
        // Gemma 3's sliding-window layers rotate with their own base (rope_local_base_freq), unscaled.
        _invFreqLocal = _c.SlidingLayers is null ? _invFreq : UploadFrequencies(new RopeTable(_c, local: true));
    }

    private ulong UploadFrequencies(RopeTable table)
    {
        var invFreq = table.InverseFrequencies.ToArray();
        var buffer = _buffers.F32(invFreq.Length);
        _ctx.Upload<float>(buffer, invFreq);
        return buffer;
    }

    /// <summary>Whether the kernels take <paramref name="c"/>'s shapes; <paramref name="reason"/> says what is off when not.</summary>
    public static bool Supports(ModelConfig c, out string reason)
    {
        foreach (var (name, dim) in new[] { ("hidden_size", c.HiddenSize), ("the query width", c.QDim), ("the key/value width", c.KvDim), ("intermediate_size", c.IntermediateSize) })
            if (dim % 8 != 0)
            {
                reason = $"{name} ({dim}) to be a multiple of 8";
                return false;
            }
        reason = $"head_dim ({c.HeadDim}) to be a multiple of 16 up to 128, or 256";
        return AttentionShape.Supports(c.HeadDim);
    }

    /// <summary>What this model holds on the GPU.</summary>
    public GpuMemoryPlan Plan { get; }

    /// <inheritdoc />
    public ulong? DropoutKey { get; set; }

    private CudaBlas Blas => _ctx.Blas;
    private CudaKernels K => _ctx.Kernels;
    private float Eps => (float)_c.RmsNormEps;

    /// <summary>What the norm kernels add to the stored weights: Gemma stores offsets from one.</summary>
    private float NormOffset => _c.NormWeightOffset ? 1f : 0f;

    /// <inheritdoc />
    public void ZeroGradients() => _lora.ZeroGradients();

    /// <inheritdoc />
    public double GradNorm() => _lora.GradNorm();

    /// <inheritdoc />
    public void ClipAndStep(double gradNorm, double maxGradNorm, int step, double learningRate)
    {
        _lora.ClipAndStep(gradNorm, maxGradNorm, step, learningRate, _cfg);
        RefreshCopies();
    }

    /// <inheritdoc />
    public void CopyAdapterTo(LoraAdapter adapter) => _lora.CopyTo(adapter);

    /// <inheritdoc />
    public void LoadAdapter(LoraAdapter adapter)
    {
        _lora.Load(adapter);
        RefreshCopies();
    }

    /// <inheritdoc />
    public long PeakMemoryBytes => _ctx.Device.Memory.PeakBytesInUse;

    /// <inheritdoc />
    public double ForwardBackward(PackedBatch batch, float lossScale)
    {
        var backward = lossScale != 0;
        var (n, lossRows, shape) = Stage(batch);
        // The step's launches, replayed as one CUDA graph once the shape repeats (CudaTrainingModel.Graphs.cs).
        RunStep(new StepShape(n, lossRows, lossScale, backward, shape), () =>
        {
            ForwardLayers(n, shape, backward);
            LossHead(n, lossRows, lossScale);
            if (backward) Backward(n, shape);
        });
        // Read after the backward pass is queued, so the GPU never waits for the host mid-step.
        // The sum is in row order, in double, as the CPU graph sums it.
        var loss = new float[lossRows];
        if (loss.Length > 0) _ctx.Download<float>(loss, _ws.Loss);
        var total = 0.0;
        foreach (var x in loss) total += x;
        return total;
    }

    /// <summary>
    /// Uploads <paramref name="batch"/> (padded, <see cref="PaddedBatch"/>) and runs the forward pass up to the
    /// final norm. The loss rows are the batch's <see cref="PackedBatch.LossRows"/> in the same order.
    /// </summary>
    /// <remarks><paramref name="backward"/>: whether a backward pass may follow (offloaded checkpoints are copied to the host only then).</remarks>
    private (int Rows, int LossRows, IReadOnlyList<AttentionSegment> Shape) Forward(PackedBatch batch, bool backward)
    {
        var staged = Stage(batch);
        ForwardLayers(staged.Rows, staged.Shape, backward);
        return staged;
    }

    /// <summary>Uploads <paramref name="batch"/> (padded) into the step's input buffers: ids, positions, loss rows, targets, the attention tables.</summary>
    private (int Rows, int LossRows, IReadOnlyList<AttentionSegment> Shape) Stage(PackedBatch batch)
    {
        var b = PaddedBatch.From(batch, SequenceMultiple, _c.VocabSize);
        if (b.Rows > _capacity)
            throw new InvalidOperationException($"A batch of {b.Rows} rows exceeds the planned {_capacity} tokens.");
        var n = b.Rows;
        _ctx.Upload<int>(_ws.Ids, b.Ids);
        _ctx.Upload<int>(_ws.Positions, b.Positions);
        var lossRows = b.LossRows;
        if (lossRows.Length > 0)
        {
            _ctx.Upload<int>(_ws.LossRows, lossRows);
            _ctx.Upload<int>(_ws.Targets, lossRows.Select(r => b.Targets[r]).ToArray());
        }
        var shape = b.Segments;
        PrepareAttention(shape);
        return (n, lossRows.Length, shape);
    }

    /// <summary>The forward pass over the staged batch up to the final norm (only device work: it may be captured).</summary>
    private void ForwardLayers(int n, IReadOnlyList<AttentionSegment> shape, bool backward)
    {
        _offload?.Begin(n, _c.HiddenSize, backward);
        _offload?.BeforeWrite(0);
        K.EmbeddingForward(Resid(0), _w.EmbeddingPointer, _ws.Ids, n, _c.HiddenSize, _c.EmbeddingScale);
        _offload?.Written(0);
        for (var l = 0; l < _c.NumLayers; l++)
        {
            _offload?.BeforeWrite(l + 1);
            LayerForward(l, _acts[l], n, shape);
            _offload?.Written(l + 1);
        }
        K.RmsNormForward(_ws.FinalNorm, _ws.FinalRstd, Resid(_c.NumLayers), _w.FinalNorm.Pointer, n, _c.HiddenSize, Eps, NormOffset);
    }

    /// <summary>The backward pass from d(final norm) in _ws.DNorm, accumulating the adapter's gradients.</summary>
    private void Backward(int n, IReadOnlyList<AttentionSegment> shape)
    {
        K.RmsNormBackward(_ws.DResid, _ws.DNorm, Resid(_c.NumLayers), _w.FinalNorm.Pointer, _ws.FinalRstd, n, _c.HiddenSize, accumulate: false, NormOffset, _dResidStride);
        for (var l = _c.NumLayers - 1; l >= 0; l--)
        {
            _offload?.BeforeBackward(l);
            if (Plan.Recomputes(l, _c.NumLayers)) LayerForward(l, _acts[l], n, shape, recompute: true);
            LayerBackward(l, _acts[l], n, shape);
            GradientsFinal(l);
        }
    }

    /// <summary>
    /// The fused lm-head + cross-entropy over the target rows only (prompt tokens under
    /// train_on_responses_only and padding cost nothing): their final-norm rows are gathered into
    /// _ws.DResid (free until the final norm's backward), the head's gradient lands in _ws.Scratch
    /// and is scattered into a zeroed _ws.DNorm; the per-row losses are left in _ws.Loss.
    /// </summary>
    /// <remarks>With <paramref name="logitSums"/> (fp32 [lossRows]) each loss row's sum of logits lands there too.</remarks>
    private void LossHead(int rows, int lossRows, float lossScale, ulong logitSums = 0)
    {
        int h = _c.HiddenSize;
        _ctx.Zero(_ws.DNorm, (long)rows * h * 2);
        if (lossRows == 0) return;
        K.EmbeddingForward(_ws.DResid, _ws.FinalNorm, _ws.LossRows, lossRows, h);
        _head.Run(_ws.Scratch, _ws.Loss, _ws.DResid, _w.LmHead.Pointer, _ws.Targets, lossScale, lossRows, logitSums);
        _ctx.Training.ScatterRows(_ws.DNorm, _ws.Scratch, _ws.LossRows, lossRows, h);
    }

    /// <summary>The residual stream entering layer <paramref name="i"/> (<c>NumLayers</c>: the last layer's output), on the GPU or in an offloading slot.</summary>
    private ulong Resid(int i) => _offload?[i] ?? _resid![i];

    /// <inheritdoc />
    public void Dispose()
    {
        DisposeGraphs();
        DisposeGradientSum();
        _offload?.Dispose();
        _head.Dispose();
        _spareCopies?.Dispose();
        _buffers.Dispose();
        _lora.Dispose();
        if (_ownsWeights) _w.Dispose();
    }
}
