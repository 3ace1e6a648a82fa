using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// The frozen weights of one decoder layer on the GPU, in Hugging Face's [out, in] layout: bf16, or with
/// load_in_4bit the projections in 4-bit (<see cref="FourBit"/>, and <see cref="Linear"/> null).
/// </summary>
internal sealed class CudaLayerWeights
{
    public required DeviceBuffer InputNorm { get; init; }
    public required DeviceBuffer PostNorm { get; init; }
    public required DeviceBuffer?[] Linear { get; init; }
    public CudaFourBitTensor?[] FourBit { get; init; } = new CudaFourBitTensor?[Projections.All.Length];
    public required DeviceBuffer?[] Bias { get; init; }
    public DeviceBuffer? QNorm { get; init; }
    public DeviceBuffer? KNorm { get; init; }
    /// <summary>Gemma 3's norms of the attention and MLP outputs (sandwich norms).</summary>
    public DeviceBuffer? AttentionOutNorm { get; init; }
    public DeviceBuffer? MlpOutNorm { get; init; }

    public IEnumerable<DeviceBuffer> All() =>
        new[] { InputNorm, PostNorm }.Concat(Linear.OfType<DeviceBuffer>()).Concat(FourBit.OfType<CudaFourBitTensor>().Select(t => t.Owner).OfType<DeviceBuffer>()).Concat(Bias.OfType<DeviceBuffer>())
            .Concat(new[] { QNorm, KNorm, AttentionOutNorm, MlpOutNorm }.OfType<DeviceBuffer>());
}

/// <summary>
/// All frozen base weights of a Llama-family model as bf16 on the GPU: streamed from the safetensors
/// one tensor at a time (training), converted from a host float32 copy (the reference the streamed
/// weights are checked against), or random-initialised on the device for benchmarks at shapes whose
/// weights are not at hand.
/// </summary>
internal sealed class CudaModelWeights : IDisposable
{
    private readonly DeviceBuffer? _fourBitArena;

    private CudaModelWeights(ModelConfig config, DeviceBuffer? embedding, MappedHostBuffer? hostEmbedding, DeviceBuffer finalNorm, DeviceBuffer lmHead, CudaLayerWeights[] layers, DeviceBuffer? fourBitArena = null)
    {
        _fourBitArena = fourBitArena;
        Config = config;
        Embedding = embedding;
        HostEmbedding = hostEmbedding;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        Layers = layers;
    }

    public ModelConfig Config { get; }
    /// <summary>The input embedding [vocab, hidden] on the GPU, or null when it is in <see cref="HostEmbedding"/>.</summary>
    public DeviceBuffer? Embedding { get; }
    /// <summary>The input embedding in mapped host memory (<see cref="EmbeddingInHostMemory"/>), or null.</summary>
    public MappedHostBuffer? HostEmbedding { get; }
    /// <summary>The address the embedding kernel reads the table at, on the GPU or in mapped host memory.</summary>
    public ulong EmbeddingPointer => Embedding?.Pointer ?? HostEmbedding!.Pointer;
    public DeviceBuffer FinalNorm { get; }
    /// <summary>The head [vocab, hidden]; the embedding buffer itself when tied.</summary>
    public DeviceBuffer LmHead { get; }
    public CudaLayerWeights[] Layers { get; }

    /// <summary>
    /// Whether the input embedding stays in pinned host memory that the GPU reads over PCIe: with
    /// load_in_4bit or gradient_checkpointing: offload (<paramref name="offload"/>), when it is not also the LM head. It is frozen and a step reads only the batch's
    /// rows (tokens × hidden × 2 bytes), so the GPU saves the whole table (1 GiB at Llama-3.1-8B) for a
    /// read that takes well under a millisecond per step.
    /// </summary>
    public static bool EmbeddingInHostMemory(ModelConfig c, FourBitSettings? fourBit, bool offload = false) => (fourBit is not null || offload) && !c.TieWordEmbeddings;

    /// <summary>Bytes of pinned host memory the weights hold (the embedding when <see cref="EmbeddingInHostMemory"/>).</summary>
    public static long HostBytes(ModelConfig c, FourBitSettings? fourBit, bool offload = false) => EmbeddingInHostMemory(c, fourBit, offload) ? 2L * c.VocabSize * c.HiddenSize : 0;

    private static bool HasBias(ModelConfig c, Projection p) => LlamaTensorLayout.HasBias(c, p);

    /// <summary>Bytes the weights take on the device: bf16, or with <paramref name="fourBit"/> the projections in 4-bit (and an untied embedding in host memory).</summary>
    public static long Bytes(ModelConfig c, FourBitSettings? fourBit = null, bool offload = false)
    {
        long perLayer = 2L * c.HiddenSize, quantized = 0;
        foreach (var p in Projections.All)
        {
            var count = (long)p.OutFeatures(c) * p.InFeatures(c);
            if (fourBit is null) perLayer += count;
            else quantized += CudaFourBitTensor.BytesFor(fourBit, count);
            if (HasBias(c, p)) perLayer += p.OutFeatures(c);
        }
        if (c.QkNorm) perLayer += 2L * c.HeadDim;
        if (c.SandwichNorms) perLayer += 2L * c.HiddenSize;
        var embed = (long)c.VocabSize * c.HiddenSize;
        return 2 * (perLayer * c.NumLayers + embed * (c.TieWordEmbeddings ? 1 : 2) + c.HiddenSize) + quantized * c.NumLayers - HostBytes(c, fourBit, offload);
    }

    /// <summary>
    /// One allocation for every 4-bit projection of a model, in the order the loaders fill
    /// it, and a cursor handing out each projection's slice.
    /// </summary>
    private sealed class FourBitArena(DeviceBuffer buffer, FourBitSettings settings)
    {
        private ulong _next = buffer.Pointer;

        public DeviceBuffer Buffer => buffer;

        public static FourBitArena Allocate(CudaTrainingContext ctx, ModelConfig c, FourBitSettings settings) =>
            new(ctx.Device.Memory.Allocate(c.NumLayers * Projections.All.Sum(p => CudaFourBitTensor.BytesFor(settings, (long)p.OutFeatures(c) * p.InFeatures(c)))), settings);

        public ulong Take(long count)
        {
            var at = _next;
            _next += (ulong)CudaFourBitTensor.BytesFor(settings, count);
            if (_next > buffer.Pointer + (ulong)buffer.Bytes) throw new InvalidOperationException("The 4-bit projections outgrew their planned allocation.");
            return at;
        }
    }

    /// <summary>Values of the largest projection: the size of the bf16 buffer 4-bit projections are dequantized into.</summary>
    public static long LargestProjection(ModelConfig c) => Projections.All.Max(p => (long)p.OutFeatures(c) * p.InFeatures(c));

    /// <summary>
    /// Reads the tensors of <paramref name="c"/> from <paramref name="files"/> one at a time, as bf16
    /// (BF16 as stored, F32 and F16 rounded to nearest even on the host, see <see cref="TensorDTypes.ToBF16"/>),
    /// into one reusable host buffer the size of the largest tensor, and copies each to its own device
    /// buffer: host memory stays at about one tensor (the embedding, 1 GiB for Llama-3.1-8B) instead
    /// of the float32 model (32 GiB for it). Gives the same bytes as <see cref="Upload"/> of the float32
    /// copy, whose device conversion rounds the same way. With <paramref name="fourBit"/> each projection
    /// goes to one reused device staging buffer and is quantized there (<see cref="FourBitKernels.Quantize"/>):
    /// the GPU then holds it in 4-bit only, and an untied embedding is read straight into mapped host memory
    /// (<see cref="EmbeddingInHostMemory"/>).
    /// </summary>
    public static CudaModelWeights Stream(CudaTrainingContext ctx, ModelConfig c, ModelWeights files, Action<LlamaTensor>? onTensor = null, FourBitSettings? fourBit = null, bool offload = false)
    {
        var pool = ctx.Device.Memory;
        var tensors = LlamaTensorLayout.For(c);
        foreach (var t in tensors) LlamaTensorLayout.CheckShape(files, t.Name, t.Shape);
        // Pinned, so each copy goes straight from it (pageable memory is staged by the driver).
        var staging = GC.AllocateUninitializedArray<ushort>(checked((int)tensors.Max(t => t.ElementCount)), pinned: true);
        var layers = Enumerable.Range(0, c.NumLayers).Select(_ => new StreamedLayer(Projections.All.Length)).ToArray();
        DeviceBuffer? embedding = null, head = null, finalNorm = null;
        var owned = new List<IDisposable>();
        var arena = fourBit is null ? null : FourBitArena.Allocate(ctx, c, fourBit);
        if (arena is not null) owned.Add(arena.Buffer);
        var hostEmbedding = EmbeddingInHostMemory(c, fourBit, offload) ? MappedHostBuffer.Allocate(ctx.Device, HostBytes(c, fourBit, offload)) : null;
        if (hostEmbedding is not null) owned.Add(hostEmbedding);
        using var deviceStaging = fourBit is null ? null : pool.Allocate(LargestProjection(c) * 2);
        try
        {
            foreach (var t in tensors)
            {
                if (hostEmbedding is not null && t.Kind == LlamaTensorKind.Embedding)
                {
                    files.ReadBF16(t.Name, hostEmbedding.AsSpan<ushort>());
                    onTensor?.Invoke(t);
                    continue;
                }
                var host = staging.AsSpan(0, (int)t.ElementCount);
                files.ReadBF16(t.Name, host);
                if (fourBit is not null && t.Kind == LlamaTensorKind.Linear)
                {
                    deviceStaging!.Upload<ushort>(host);
                    var quantized = ctx.FourBit.Quantize(deviceStaging.Pointer, t.ElementCount, fourBit, arena!.Take(t.ElementCount));
                    layers[t.Layer].FourBit[(int)t.Projection] = quantized;
                    onTensor?.Invoke(t);
                    continue;
                }
                var buffer = pool.Allocate(t.ElementCount * 2);
                owned.Add(buffer);
                buffer.Upload<ushort>(host);
                onTensor?.Invoke(t);
                switch (t.Kind)
                {
                    case LlamaTensorKind.Linear: layers[t.Layer].Linear[(int)t.Projection] = buffer; break;
                    case LlamaTensorKind.Bias: layers[t.Layer].Bias[(int)t.Projection] = buffer; break;
                    case LlamaTensorKind.InputNorm: layers[t.Layer].InputNorm = buffer; break;
                    case LlamaTensorKind.PostNorm: layers[t.Layer].PostNorm = buffer; break;
                    case LlamaTensorKind.QNorm: layers[t.Layer].QNorm = buffer; break;
                    case LlamaTensorKind.KNorm: layers[t.Layer].KNorm = buffer; break;
                    case LlamaTensorKind.AttentionOutNorm: layers[t.Layer].AttentionOutNorm = buffer; break;
                    case LlamaTensorKind.MlpOutNorm: layers[t.Layer].MlpOutNorm = buffer; break;
                    case LlamaTensorKind.Embedding: embedding = buffer; break;
                    case LlamaTensorKind.LmHead: head = buffer; break;
                    case LlamaTensorKind.FinalNorm: finalNorm = buffer; break;
                }
            }
        }
        catch
        {
            foreach (var b in owned) b.Dispose();
            throw;
        }
        var result = new CudaModelWeights(c, embedding, hostEmbedding, finalNorm!, c.TieWordEmbeddings ? embedding! : head!, layers.Select(l => l.Build()).ToArray(), arena?.Buffer);
        ctx.Device.Synchronize();
        return result;
    }

    private sealed class StreamedLayer(int projections)
    {
        public DeviceBuffer? InputNorm, PostNorm, QNorm, KNorm, AttentionOutNorm, MlpOutNorm;
        public readonly DeviceBuffer?[] Linear = new DeviceBuffer?[projections];
        public readonly CudaFourBitTensor?[] FourBit = new CudaFourBitTensor?[projections];
        public readonly DeviceBuffer?[] Bias = new DeviceBuffer?[projections];

        public CudaLayerWeights Build() => new()
        {
            InputNorm = InputNorm!, PostNorm = PostNorm!, Linear = Linear, FourBit = FourBit, Bias = Bias, QNorm = QNorm, KNorm = KNorm,
            AttentionOutNorm = AttentionOutNorm, MlpOutNorm = MlpOutNorm,
        };
    }

    /// <summary>
    /// Converts <paramref name="w"/> to bf16 on the device (round to nearest even, as torch's <c>.to(bfloat16)</c>).
    /// Norm weights go up as the checkpoint stores them: the kernels add Gemma's one themselves.
    /// </summary>
    public static CudaModelWeights Upload(CudaTrainingContext ctx, LlamaWeights w)
    {
        var c = w.Config;
        var pool = ctx.Device.Memory;
        var largest = Math.Max((long)c.VocabSize * c.HiddenSize, Projections.All.Max(p => (long)p.OutFeatures(c) * p.InFeatures(c)));
        using var staging = pool.Allocate(largest * 4);
        DeviceBuffer Put(float[] host)
        {
            var buffer = pool.Allocate(host.LongLength * 2);
            staging.Upload<float>(host);
            ctx.Kernels.Float32ToBFloat16(buffer.Pointer, staging.Pointer, host.LongLength);
            return buffer;
        }
        // LlamaWeights holds Gemma's norms as 1 + w in fp32: back to the offsets (exact for bf16 w of magnitude 2^-16 and above).
        DeviceBuffer Norm(float[] v) => Put(c.NormWeightOffset ? v.Select(x => x - 1f).ToArray() : v);
        var layers = w.Layers.Select(l => new CudaLayerWeights
        {
            InputNorm = Norm(l.InputNorm),
            PostNorm = Norm(l.PostNorm),
            Linear = l.Linear.Select(Put).ToArray(),
            Bias = l.Bias.Select(b => b is null ? null : Put(b)).ToArray(),
            QNorm = l.QNorm is null ? null : Norm(l.QNorm),
            KNorm = l.KNorm is null ? null : Norm(l.KNorm),
            AttentionOutNorm = l.AttentionOutNorm is null ? null : Norm(l.AttentionOutNorm),
            MlpOutNorm = l.MlpOutNorm is null ? null : Norm(l.MlpOutNorm),
        }).ToArray();
        var embedding = Put(w.Embedding);
        var head = c.TieWordEmbeddings ? embedding : Put(w.LmHead);
        var result = new CudaModelWeights(c, embedding, null, Norm(w.FinalNorm), head, layers);
        ctx.Device.Synchronize();
        return result;
    }

    /// <summary>
    /// Random weights for benchmarks: projections and embeddings uniform with standard deviation
    /// 0.02 (Hugging Face's initializer_range), norm weights 1, biases 0. Deterministic in <paramref name="seed"/>.
    /// With <paramref name="fourBit"/> each projection is drawn into one reused buffer and quantized from there, and an untied
    /// embedding is drawn into host memory (<see cref="EmbeddingInHostMemory"/>).
    /// </summary>
    public static CudaModelWeights Random(CudaTrainingContext ctx, ModelConfig c, ulong seed, FourBitSettings? fourBit = null, bool offload = false)
    {
        var pool = ctx.Device.Memory;
        var scale = 0.02f * MathF.Sqrt(3);
        var stream = seed;
        DeviceBuffer Uniform(long count)
        {
            var b = pool.Allocate(count * 2);
            ctx.Kernels.FillUniform(b.Pointer, count, DeterministicRandom.Mix(++stream), scale);
            return b;
        }
        DeviceBuffer Constant(long count, float value)
        {
            var b = pool.Allocate(count * 2);
            ctx.Training.Fill(b.Pointer, count, value);
            return b;
        }
        var arena = fourBit is null ? null : FourBitArena.Allocate(ctx, c, fourBit);
        using var staging = fourBit is null ? null : pool.Allocate(LargestProjection(c) * 2);
        CudaFourBitTensor Quantized(long count)
        {
            ctx.Kernels.FillUniform(staging!.Pointer, count, DeterministicRandom.Mix(++stream), scale);
            return ctx.FourBit.Quantize(staging.Pointer, count, fourBit!, arena!.Take(count));
        }
        // A norm factor of one: stored as 0 where the kernels add one (Gemma).
        var one = c.NormWeightOffset ? 0f : 1f;
        var layers = Enumerable.Range(0, c.NumLayers).Select(_ => new CudaLayerWeights
        {
            InputNorm = Constant(c.HiddenSize, one),
            PostNorm = Constant(c.HiddenSize, one),
            Linear = Projections.All.Select(p => fourBit is null ? Uniform((long)p.OutFeatures(c) * p.InFeatures(c)) : null).ToArray(),
            FourBit = Projections.All.Select(p => fourBit is null ? null : Quantized((long)p.OutFeatures(c) * p.InFeatures(c))).ToArray(),
            Bias = Projections.All.Select(p => HasBias(c, p) ? Constant(p.OutFeatures(c), 0) : null).ToArray(),
            QNorm = c.QkNorm ? Constant(c.HeadDim, one) : null,
            KNorm = c.QkNorm ? Constant(c.HeadDim, one) : null,
            AttentionOutNorm = c.SandwichNorms ? Constant(c.HiddenSize, one) : null,
            MlpOutNorm = c.SandwichNorms ? Constant(c.HiddenSize, one) : null,
        }).ToArray();
        // An embedding in mapped host memory is filled by the same kernel, writing over PCIe: the same values.
        var hostEmbedding = EmbeddingInHostMemory(c, fourBit, offload) ? MappedHostBuffer.Allocate(ctx.Device, HostBytes(c, fourBit, offload)) : null;
        if (hostEmbedding is not null) ctx.Kernels.FillUniform(hostEmbedding.Pointer, (long)c.VocabSize * c.HiddenSize, DeterministicRandom.Mix(++stream), scale);
        var embedding = hostEmbedding is null ? Uniform((long)c.VocabSize * c.HiddenSize) : null;
        var head = c.TieWordEmbeddings ? embedding! : Uniform((long)c.VocabSize * c.HiddenSize);
        var result = new CudaModelWeights(c, embedding, hostEmbedding, Constant(c.HiddenSize, one), head, layers, arena?.Buffer);
        ctx.Device.Synchronize();
        return result;
    }

    public void Dispose()
    {
        _fourBitArena?.Dispose();
        foreach (var b in Layers.SelectMany(l => l.All())) b.Dispose();
        Embedding?.Dispose();
        HostEmbedding?.Dispose();
        FinalNorm.Dispose();
        if (!ReferenceEquals(LmHead, Embedding)) LmHead.Dispose();
    }
}
