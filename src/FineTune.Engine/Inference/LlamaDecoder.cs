using FineTune.Engine.Backends;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Inference;

/// <summary>
/// Incremental (KV-cached) inference over frozen base weights with an optional LoRA adapter applied
/// beside them, y = x Wᵀ + scale · (x Aᵀ) Bᵀ, exactly as in training. Keeping the adapter separate
/// lets one set of base weights answer as the base model (no adapter) and as the fine-tuned model.
/// The decoder itself is read-only and may be shared; each conversation gets its own
/// <see cref="DecoderSession"/>.
/// </summary>
public sealed class LlamaDecoder
{
    /// <summary>A decoder over <paramref name="weights"/>, with <paramref name="adapter"/> (made for the same model) applied when not null.</summary>
    public LlamaDecoder(LlamaWeights weights, LoraAdapter? adapter = null, IComputeBackend? backend = null)
    {
        Weights = weights;
        Adapter = adapter;
        Backend = backend ?? new CpuBackend();
        Ropes = RopeTable.PerLayer(weights.Config);
        var c = weights.Config;
        MacsPerPosition = (long)c.HiddenSize * (c.QDim + 2L * c.KvDim) + (long)c.QDim * c.HiddenSize + 3L * c.HiddenSize * c.IntermediateSize;
        // CPU kernels give the same result on any number of threads, so small work can run on one.
        SmallWorkBackend = Backend is CpuBackend ? new CpuBackend(1) : Backend;
    }

    /// <summary>The architecture.</summary>
    public ModelConfig Config => Weights.Config;

    /// <summary>The frozen base weights.</summary>
    public LlamaWeights Weights { get; }

    /// <summary>The adapter applied beside the base weights, or null for the base model.</summary>
    public LoraAdapter? Adapter { get; }

    /// <summary>The kernels the decoder runs on.</summary>
    public IComputeBackend Backend { get; }

    /// <summary>The rotary table of each layer (Gemma 3's sliding-window layers have their own base).</summary>
    internal RopeTable[] Ropes { get; }

    /// <summary>Multiply-adds of one position through one layer's projections.</summary>
    internal long MacsPerPosition { get; }

    /// <summary>Runs layers whose work is too small to share among threads (see <see cref="DecoderSession"/>).</summary>
    internal IComputeBackend SmallWorkBackend { get; }

    /// <summary>The same base weights without the adapter (the model before fine-tuning).</summary>
    public LlamaDecoder WithoutAdapter() => Adapter is null ? this : new LlamaDecoder(Weights, null, Backend);

    /// <summary>Loads a Hugging Face model folder and, when given, a PEFT adapter folder for it.</summary>
    public static LlamaDecoder Load(string modelDirectory, string? adapterDirectory = null, IComputeBackend? backend = null)
    {
        var weights = LlamaWeights.Load(modelDirectory);
        var adapter = adapterDirectory is null ? null : LoraAdapter.Load(adapterDirectory, weights.Config);
        return new LlamaDecoder(weights, adapter, backend);
    }

    /// <summary>A new conversation state with an empty KV cache.</summary>
    public DecoderSession CreateSession(int initialCapacity = 256) => new(this, initialCapacity);
}
