using System.Globalization;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Model;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// What a CUDA training run holds on the GPU, computed before anything is allocated: the model
/// allocates exactly these buffers once, so the plan is its peak (up to the pool's 2 MiB rounding).
/// All sizes in bytes; activations are bf16 (2 bytes), per-row statistics fp32.
/// </summary>
public sealed record GpuMemoryPlan
{
    /// <summary>cuBLASLt's workspace plus room for the loaded kernel modules.</summary>
    public const long FixedBytes = (32L << 20) + (64L << 20);

    /// <summary>Sequences per micro-batch.</summary>
    public required int Batch { get; init; }
    /// <summary>Tokens per sequence (the longest, padded to <see cref="CudaTrainingModel.SequenceMultiple"/>).</summary>
    public required int SequenceLength { get; init; }
    /// <summary>Whether layer activations are recomputed in the backward pass.</summary>
    public required bool GradientCheckpointing { get; init; }
    /// <summary>Base weights: bf16, or the projections in 4-bit (<see cref="FourBit"/>).</summary>
    public required long Weights { get; init; }
    /// <summary>The 4-bit format of the projections (load_in_4bit), or null for bf16.</summary>
    public FourBitSettings? FourBit { get; init; }
    /// <summary>Pinned host memory the GPU reads instead of holding: an untied input embedding with load_in_4bit (not in <see cref="Total"/>).</summary>
    public long HostEmbedding { get; init; }
    /// <summary>The bf16 buffer 4-bit projections are dequantized into before each product (the largest projection), 0 without 4-bit.</summary>
    public long Dequantized { get; init; }
    /// <summary>fp32 LoRA values, gradients, AdamW moments, and the bf16 copy.</summary>
    public required long Adapter { get; init; }
    /// <summary>What one layer keeps per token for its backward pass.</summary>
    public required long LayerBytesPerToken { get; init; }
    /// <summary>
    /// Whether checkpointing keeps each layer's <see cref="KeptBytes"/> (selective checkpointing).
    /// Not with 4-bit projections or offloaded checkpoints: both are chosen for memory, and the kept tensors
    /// (3.4 GiB at Llama-3.1-8B 2 x 2048 with q/k/v, 2.0 GiB without) would add 40% to an 8B 4-bit run's 8 GiB
    /// for about 9% of speed.
    /// </summary>
    public bool KeepsAttention { get; init; }
    /// <summary>
    /// Whether the kept tensors also hold each layer's attention inputs q, k, v (after RoPE, and with q/k norms their inputs
    /// and rstd), so the recompute runs only the first norm and the adapter's hidden values of q/k/v, not their base
    /// products, the q/k norms or RoPE. On wherever <see cref="KeepsAttention"/> is (6,144 bytes a token a layer at
    /// Llama-3.2-1B, 12,288 at Llama-3.1-8B): those products are a tenth of a layer's forward FLOPs.
    /// </summary>
    public bool KeepsQkv { get; init; }
    /// <summary>
    /// Whether the kept tensors also hold each layer's LoRA hidden values of o_proj and down_proj (scale · drop(x)·Aᵀ,
    /// r values a token each): the recompute then skips the two products that read the attention output and the
    /// gated MLP's output h (8,192 wide at Llama-3.2-1B) only to rebuild them. On wherever <see cref="KeepsAttention"/>
    /// is and either projection has an adapter (<see cref="ResidualLoraTargets"/>): 64 bytes a token a layer at r = 16.
    /// </summary>
    public bool KeepsLoraHiddens { get; init; }
    /// <summary>How many of o_proj and down_proj have adapters (0-2): the LoRA hidden values <see cref="KeepsLoraHiddens"/> keeps.</summary>
    public int ResidualLoraTargets { get; init; }
    /// <summary>
    /// Whether the layers share one buffer for the gated MLP's output h = act(gate)·up instead of each
    /// keeping its own (without checkpointing; a checkpointed run recomputes a layer at a time anyway).
    /// The GLU backward kernel writes h again from the layer's kept gate and up with the forward kernel's
    /// bits, and down_proj's A gradient (the one product that reads h) waits for it, so training is unchanged:
    /// it saves intermediate_size · 2 bytes per token per layer (1.9 GiB of 12.9 at Llama-3.2-1B 4 x 2048)
    /// for writing h once more per layer.
    /// </summary>
    public bool SharesGluOutput { get; init; }
    /// <summary>
    /// Under selective checkpointing, how many layers (the last ones) keep every activation, as without checkpointing, and
    /// are not recomputed: the layers a gpu_memory_limit has room for (<see cref="KeepingWholeLayers"/>). Training is the same bit for bit;
    /// each such layer saves its recompute (gate and up's products, the norms, q/k/v's LoRA hidden values) for <see cref="WholeLayerBytes"/>.
    /// </summary>
    public int WholeLayers { get; init; }
    /// <summary>What keeping one more layer whole adds: its activations less the kept tensors it already holds and h, which it shares.</summary>
    public long WholeLayerBytes { get; init; }
    /// <summary>Layer activations held at once: every layer's, or with checkpointing one layer's (plus every layer's <see cref="KeptBytes"/> when <see cref="KeepsAttention"/>).</summary>
    public required long Activations { get; init; }
    /// <summary>The residual stream at every layer boundary (the checkpoints), or with <see cref="OffloadCheckpoints"/> the GPU's four slots for them.</summary>
    public required long Residuals { get; init; }
    /// <summary>
    /// Whether the checkpoints live in pinned host memory (<see cref="OffloadedResiduals"/>): with
    /// gradient_checkpointing: offload, and with load_in_4bit and gradient checkpointing, where they are the
    /// largest part left that grows with the model.
    /// </summary>
    public bool OffloadCheckpoints { get; init; }
    /// <summary>Pinned host bytes of the offloaded checkpoints (not in <see cref="Total"/>).</summary>
    public long HostCheckpoints { get; init; }
    /// <summary>The LoRA targets the spare weight columns were counted for (see <see cref="SpareColumnBytes"/>), or null.</summary>
    public IReadOnlyCollection<Projection>? SpareColumnTargets { get; init; }
    /// <summary>Backward-pass scratch, the batch's ids/positions/targets, and the fused lm-head + loss.</summary>
    public required long Workspace { get; init; }

    /// <summary>Everything, including <see cref="FixedBytes"/>.</summary>
    public long Total => Weights + Dequantized + Adapter + Activations + Residuals + Workspace + FixedBytes;

    /// <summary>Tokens per micro-batch.</summary>
    public long Tokens => (long)Batch * SequenceLength;

    /// <summary>Bytes one layer keeps per token for the backward pass (bf16 activations, fp32 statistics).</summary>
    public static long LayerBytes(ModelConfig c, int rank, int loraTargets)
    {
        long h = c.HiddenSize, q = c.QDim, kv = c.KvDim, i = c.IntermediateSize;
        var bytes = 2 * (h /*norm1*/ + q /*q*/ + 2 * kv /*k, v*/ + q /*attention out*/ + h /*x1*/ + h /*norm2*/ + 3 * i /*gate, up, SwiGLU output*/ + (long)rank * loraTargets)
                    + 4 * (2 /*rstd1, rstd2*/ + (long)c.NumHeads /*lse*/);
        if (c.QkNorm) bytes += 2 * (q + kv) + 4L * (c.NumHeads + c.NumKvHeads);
        if (c.SandwichNorms) bytes += 2 * (2 * h /*o_proj, down_proj outputs*/) + 4 * 2 /*their rstd*/;
        return bytes;
    }

    /// <summary>
    /// Bytes per token each layer keeps under gradient checkpointing (selective checkpointing): the
    /// attention output, its log-sum-exp and the post-attention residual, and with <paramref name="qkv"/>
    /// (<see cref="KeepsQkv"/>) the attention inputs q, k, v. Cheap to store (about a fifth of
    /// <see cref="LayerBytes"/> at Llama shapes) and the costliest to recompute per byte: keeping them lets
    /// the recompute skip the attention kernel and the q/k/v and o_proj base products.
    /// </summary>
    public static long KeptBytes(ModelConfig c, bool qkv = true) =>
        2L * (c.QDim + c.HiddenSize) + 4L * c.NumHeads + (qkv ? QkvBytes(c) : 0);

    /// <summary>Bytes per token of one layer's kept LoRA hidden values (<see cref="KeepsLoraHiddens"/>): bf16, r per adapted o_proj and down_proj.</summary>
    public static long LoraHiddenBytes(int rank, int residualLoraTargets) => 2L * rank * residualLoraTargets;

    /// <summary>Bytes per token of one layer's q, k, v (after RoPE), and with q/k norms their inputs and rstd.</summary>
    public static long QkvBytes(ModelConfig c) =>
        2L * (c.QDim + 2L * c.KvDim) + (c.QkNorm ? 2L * (c.QDim + c.KvDim) + 4L * (c.NumHeads + c.NumKvHeads) : 0);

    /// <summary>
    /// Values per token of the scratch buffer: a dropped projection input (the widest of hidden, q and intermediate) or,
    /// without dropout, the packed [dq | dk | dv | g] rows (CudaTrainingModel.PacksQkvGradient); at every real shape the
    /// intermediate size is the widest.
    /// </summary>
    public static long ScratchWidth(ModelConfig c, int rank) =>
        Math.Max(Math.Max(c.HiddenSize, c.QDim), Math.Max(c.IntermediateSize, c.QDim + 2L * c.KvDim + LoraGroups.MaxMembers * (long)rank));

    /// <summary>Scratch bytes per token outside the layers (the head's chunked workspace is added separately).</summary>
    public static long WorkspaceBytesPerToken(ModelConfig c, int rank)
    {
        long h = c.HiddenSize, q = c.QDim, kv = c.KvDim, i = c.IntermediateSize;
        var bytes = 2 * (i /*d SwiGLU output*/ + 2 * h + rank /*d resid (with spare columns for o/down's LoRA g), d norm*/ + 2 * q /*d q, d att*/ + 2 * kv /*d k, d v*/ + ScratchWidth(c, rank) /*dropout scratch, packed q/k/v gradient*/ + LoraGroups.MaxMembers * rank /*lora g, a q/k/v group's*/ + h /*final norm*/)
                    + 4 * (1 /*final rstd*/ + (long)c.NumHeads /*attention delta*/ + 1 /*loss*/ + 2 /*row scales, logit sums (preference)*/) + 4 * 4 /*ids, positions, targets, loss rows*/
                    + 3 /*the single attention launch's tile tables, VarlenAttention.BytesFor*/;
        if (c.QkNorm) bytes += 2 * (q + kv);
        return bytes;
    }

    /// <summary>
    /// What the spare columns add (CudaTrainingModel.SpareColumns) for each group that <paramref name="targets"/> covers whole:
    /// per layer the weights' extra columns (B's copy and the zero padding), and per token per layer the norm output's
    /// padding columns (the hidden values in front of them are counted with the LoRA hidden values).
    /// </summary>
    public static (long WeightsPerLayer, long PerToken) SpareColumnBytes(ModelConfig c, int rank, IReadOnlyCollection<Projection> targets)
    {
        long weights = 0, perToken = 0;
        foreach (var group in CudaTrainingModel.SpareColumnGroups)
        {
            if (!group.All(targets.Contains)) continue;
            var stride = CudaTrainingModel.SpareStride(c.HiddenSize, group.Length, rank);
            var pad = stride - c.HiddenSize;
            weights += 2L * pad * group.Sum(p => (long)p.OutFeatures(c)) + 2L * stride * CudaTrainingModel.StackedARows(c, group, rank);
            perToken += 2L * (pad - group.Length * rank);
        }
        return (weights, perToken);
    }

    /// <summary>The plan for a run of <paramref name="batch"/> × <paramref name="sequenceLength"/> tokens.</summary>
    /// <remarks><paramref name="spareColumnTargets"/>: the LoRA targets when the model keeps B in spare weight columns (every layer adapted, no dropout, a rank that is a multiple of 8), else null.</remarks>
    /// <remarks><paramref name="keepAttention"/> overrides <see cref="KeepsAttention"/>'s rule (the benchmark's A/B of the two recomputations).</remarks>
    /// <remarks><paramref name="keepQkv"/>: false keeps only the attention output, lse and x1 (<see cref="KeepsQkv"/> off: the benchmark's A/B, the checks).</remarks>
    /// <remarks><paramref name="offloadCheckpoints"/> is gradient_checkpointing: offload (checkpoints and an untied input embedding in host memory).</remarks>
    /// <remarks><paramref name="residualLoraTargets"/>: how many of o_proj and down_proj have adapters (<see cref="ResidualLoraTargets"/>); <paramref name="keepLoraHiddens"/>: false recomputes their hidden values (the A/B, the checks).</remarks>
    public static GpuMemoryPlan For(ModelConfig c, int rank, int loraTargets, long adapterParameters, int batch, int sequenceLength, bool gradientCheckpointing, FourBitSettings? fourBit = null, bool? keepAttention = null,
        bool offloadCheckpoints = false, IReadOnlyCollection<Projection>? spareColumnTargets = null, bool? shareGluOutput = null, bool? keepQkv = null,
        int residualLoraTargets = 0, bool? keepLoraHiddens = null)
    {
        var tokens = (long)batch * sequenceLength;
        var spare = fourBit is null && spareColumnTargets is not null ? SpareColumnBytes(c, rank, spareColumnTargets) : (0, 0);
        var layer = LayerBytes(c, rank, loraTargets) + spare.PerToken;
        var offload = gradientCheckpointing && (fourBit is not null || offloadCheckpoints);
        var keeps = gradientCheckpointing && (keepAttention ?? !offload);
        var keepsQkv = keeps && (keepQkv ?? true);
        var keepsHiddens = keeps && residualLoraTargets > 0 && (keepLoraHiddens ?? true);
        var kept = keeps ? KeptBytes(c, keepsQkv) + (keepsHiddens ? LoraHiddenBytes(rank, residualLoraTargets) : 0) : 0;
        var hostEmbedding = fourBit is not null || offload;
        var sharesGlu = !gradientCheckpointing && (shareGluOutput ?? true);
        var glu = 2L * c.IntermediateSize;
        return new GpuMemoryPlan
        {
            Batch = batch,
            SequenceLength = sequenceLength,
            GradientCheckpointing = gradientCheckpointing,
            KeepsAttention = keeps,
            KeepsQkv = keepsQkv,
            KeepsLoraHiddens = keepsHiddens,
            ResidualLoraTargets = residualLoraTargets,
            Weights = CudaModelWeights.Bytes(c, fourBit, hostEmbedding) + spare.WeightsPerLayer * c.NumLayers,
            FourBit = fourBit,
            HostEmbedding = CudaModelWeights.HostBytes(c, fourBit, hostEmbedding),
            Dequantized = fourBit is null ? 0 : 2 * CudaModelWeights.LargestProjection(c),
            Adapter = CudaLoraState.BytesFor(adapterParameters),
            LayerBytesPerToken = layer,
            SharesGluOutput = sharesGlu,
            WholeLayerBytes = keeps ? (layer - glu - kept) * tokens : 0,
            Activations = gradientCheckpointing ? (layer - kept) * tokens + kept * tokens * c.NumLayers
                : sharesGlu ? (layer - glu) * tokens * c.NumLayers + glu * tokens
                : layer * tokens * c.NumLayers,
            Residuals = offload ? OffloadedResiduals.DeviceBytes(tokens, c.HiddenSize) : 2L * c.HiddenSize * tokens * (c.NumLayers + 1),
            OffloadCheckpoints = offload,
            SpareColumnTargets = spareColumnTargets,
            HostCheckpoints = offload ? OffloadedResiduals.HostBytes(c.NumLayers, tokens, c.HiddenSize) : 0,
            Workspace = WorkspaceBytesPerToken(c, rank) * tokens + LmHeadCrossEntropy.WorkspaceBytesFor((int)Math.Min(int.MaxValue, tokens), c.HiddenSize, c.VocabSize),
        };
    }

    /// <summary>The same run with other settings.</summary>
    public GpuMemoryPlan With(ModelConfig c, int rank, int loraTargets, long adapterParameters, int? batch = null, int? sequenceLength = null, bool? gradientCheckpointing = null, FourBitSettings? fourBit = null) =>
        For(c, rank, loraTargets, adapterParameters, batch ?? Batch, sequenceLength ?? SequenceLength, gradientCheckpointing ?? GradientCheckpointing, fourBit ?? FourBit, spareColumnTargets: SpareColumnTargets,
            residualLoraTargets: ResidualLoraTargets);

    /// <summary>
    /// This plan, or where it does not fit in <paramref name="free"/> bytes, the same run with selective checkpointing
    /// keeping less: q/k/v recomputed, then the attention output too, the first that fits (the leanest when none does,
    /// the least the run needs). The kept tensors buy speed (a few percent each), never the run: a run that fitted
    /// before they were kept still fits.
    /// </summary>
    public GpuMemoryPlan KeepingWhatFits(ModelConfig c, int rank, int loraTargets, long adapterParameters, long free)
    {
        if (Total <= free || !KeepsAttention) return this;
        var lean = this;
        foreach (var attention in new[] { true, false })
        {
            lean = For(c, rank, loraTargets, adapterParameters, Batch, SequenceLength, GradientCheckpointing, FourBit, keepAttention: attention,
                offloadCheckpoints: OffloadCheckpoints, spareColumnTargets: SpareColumnTargets, keepQkv: false, residualLoraTargets: ResidualLoraTargets);
            if (lean.Total <= free) return lean;
        }
        return lean;
    }

    /// <summary>
    /// This plan with as many of its checkpointed layers kept whole (<see cref="WholeLayers"/>) as fit in <paramref name="limit"/> bytes:
    /// a gpu_memory_limit above what checkpointing needs buys speed with the difference. Plans that keep nothing for speed
    /// (offloaded checkpoints, 4-bit weights, no checkpointing) are what they are.
    /// </summary>
    public GpuMemoryPlan KeepingWholeLayers(int numLayers, long limit)
    {
        if (!KeepsAttention || WholeLayerBytes <= 0 || Total >= limit) return this;
        var whole = (int)Math.Min(numLayers, (limit - Total) / WholeLayerBytes);
        return whole == 0 ? this : this with { WholeLayers = whole, Activations = Activations + whole * WholeLayerBytes };
    }

    /// <summary>Whether layer <paramref name="layer"/> of <paramref name="numLayers"/> is recomputed in the backward pass (checkpointed and not kept whole).</summary>
    public bool Recomputes(int layer, int numLayers) => GradientCheckpointing && layer < numLayers - WholeLayers;

    /// <summary>
    /// The first change that makes the run fit in <paramref name="free"/> bytes, as lora.yaml settings:
    /// gradient checkpointing, then checkpointing with the checkpoints and an untied embedding in host memory
    /// (gradient_checkpointing: offload, bf16 runs: the same training, about 8% slower), then halving the batch
    /// size (the same training, in more micro-batches),
    /// then 4-bit base weights (QLoRA; at the configured batch, then halved), then halving the sequence
    /// length (which truncates data); null when nothing does.
    /// </summary>
    /// <remarks>A checkpointed candidate fits when it does keeping less (<see cref="KeepingWhatFits"/>), as the run would.</remarks>
    public string? Suggest(ModelConfig c, int rank, int loraTargets, long adapterParameters, long free)
    {
        bool Fits(GpuMemoryPlan p) => p.KeepingWhatFits(c, rank, loraTargets, adapterParameters, free).Total <= free;
        var ckpt = GradientCheckpointing;
        if (!ckpt && Fits(With(c, rank, loraTargets, adapterParameters, gradientCheckpointing: true)))
            return "gradient_checkpointing: true";
        if (FourBit is null && !OffloadCheckpoints
            && For(c, rank, loraTargets, adapterParameters, Batch, SequenceLength, gradientCheckpointing: true, offloadCheckpoints: true, spareColumnTargets: SpareColumnTargets,
                residualLoraTargets: ResidualLoraTargets).Total <= free)
            return "gradient_checkpointing: offload";
        var checkpointing = ckpt ? "" : "gradient_checkpointing: true, ";
        string Halved(int b) => $"per_device_train_batch_size: {b} (with gradient_accumulation_steps multiplied by {Batch / b} to keep the effective batch)";
        for (var b = Batch / 2; b >= 1; b /= 2)
            if (Fits(With(c, rank, loraTargets, adapterParameters, batch: b, gradientCheckpointing: true)))
                return checkpointing + Halved(b);
        var fourBit = FourBit;
        if (fourBit is null)
        {
            var qlora = new FourBitSettings(FourBitType.Nf4, DoubleQuant: true);
            if (With(c, rank, loraTargets, adapterParameters, gradientCheckpointing: true, fourBit: qlora).Total <= free)
                return checkpointing + "load_in_4bit: true";
            for (var b = Batch / 2; b >= 1; b /= 2)
                if (With(c, rank, loraTargets, adapterParameters, batch: b, gradientCheckpointing: true, fourBit: qlora).Total <= free)
                    return checkpointing + "load_in_4bit: true, " + Halved(b);
            fourBit = qlora;
        }
        var quantize = FourBit is null ? "load_in_4bit: true, " : "";
        for (var t = SequenceLength / 2; t >= 64; t /= 2)
            if (Fits(With(c, rank, loraTargets, adapterParameters, batch: 1, sequenceLength: t, gradientCheckpointing: true, fourBit: fourBit)))
                return $"{checkpointing}{quantize}per_device_train_batch_size: 1, max_seq_length: {t}";
        return null;
    }

    /// <summary>
    /// With gradient checkpointing on, a line saying that the same run fits without it, leaving a tenth of
    /// <paramref name="free"/> spare (null when it does not, or checkpointing is off): recomputing every layer
    /// costs about a sixth of the speed at Llama sizes, and users turn it on by habit (the Unsloth notebooks do).
    /// </summary>
    public string? FasterFit(ModelConfig c, int rank, int loraTargets, long adapterParameters, long free)
    {
        if (!GradientCheckpointing) return null;
        var plain = With(c, rank, loraTargets, adapterParameters, gradientCheckpointing: false);
        if (plain.Total > free - free / 10) return null;
        return $"This run also fits without gradient checkpointing ({Gib(plain.Total)} of {Gib(free)} free): gradient_checkpointing: false in lora.yaml " +
               "skips recomputing each layer in the backward pass (Llama-3.1-8B at 2 x 2048 tokens on an H200: 16,532 instead of 13,570 tokens/s).";
    }

    /// <summary>
    /// With selective checkpointing and no gpu_memory_limit, a line naming the limit (in tenths of a GiB, a tenth of
    /// <paramref name="free"/> spare) that would keep some layers whole in the GPU's free memory; null when not one layer would fit
    /// or layers are already kept whole. Checkpointing is on by default, so most runs never learn the GPU had room to recompute less.
    /// </summary>
    public string? WholeLayersHint(int numLayers, long free)
    {
        if (WholeLayers > 0) return null;
        var tenths = (long)Math.Floor((free - free / 10) / (double)(1L << 30) * 10);
        var limit = tenths * (1L << 30) / 10;
        var whole = KeepingWholeLayers(numLayers, limit);
        if (whole.WholeLayers == 0) return null;
        return string.Format(CultureInfo.InvariantCulture,
            "The GPU has room to recompute fewer layers: gpu_memory_limit: {0:0.0} in lora.yaml keeps {1} of {2} layers whole ({3} planned instead of {4}), the same training, faster.",
            tenths / 10.0, whole.WholeLayers, numLayers, Gib(whole.Total), Gib(Total));
    }

    /// <summary>One line: the parts and the total against <paramref name="free"/> bytes of <paramref name="deviceName"/> (and a gpu_memory_limit's <paramref name="limit"/> bytes).</summary>
    public string Describe(string deviceName, long free, long? limit = null) => string.Format(CultureInfo.InvariantCulture,
        "GPU memory plan ({0}, batch {1} x {2} tokens, gradient checkpointing {3}{13}): weights {4}{11}, LoRA + AdamW {5}, activations {6}, residuals {7}{12}, workspace {8}, total {9} of {10}.",
        deviceName, Batch, SequenceLength, GradientCheckpointing ? "on" : "off", Gib(Weights), Gib(Adapter), Gib(Activations), Gib(Residuals), Gib(Workspace + FixedBytes + Dequantized), Gib(Total),
        limit is { } l ? $"the {Gib(l)} gpu_memory_limit ({Gib(free)} free)" : $"{Gib(free)} free",
        FourBit is { } f ? $" (projections {f}{(HostEmbedding > 0 ? $"; input embedding {Gib(HostEmbedding)} in host memory" : "")})" : HostEmbedding > 0 ? $" (input embedding {Gib(HostEmbedding)} in host memory)" : "",
        OffloadCheckpoints ? $" (checkpoints {Gib(HostCheckpoints)} in host memory)" : "",
        WholeLayers > 0 ? $", the last {WholeLayers} layers kept whole" : "");

    /// <summary>Bytes as GiB with two decimals.</summary>
    public static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB";
}
