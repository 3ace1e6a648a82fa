using FineTune.Engine.Backends;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Lora;

namespace FineTune.Engine.Model;

/// <summary>
/// A Llama-family model for inference: base weights from a Hugging Face folder, optionally with a
/// PEFT LoRA adapter merged in. <see cref="Logits"/> runs the full forward pass over a sequence.
/// </summary>
public sealed class LlamaModel
{
    private readonly LlamaGraph _graph;

    private LlamaModel(LlamaWeights weights, IComputeBackend backend)
    {
        Weights = weights;
        _graph = new LlamaGraph(weights, adapter: null, backend);
    }

    /// <summary>The architecture.</summary>
    public ModelConfig Config => Weights.Config;

    /// <summary>The (merged) weights.</summary>
    public LlamaWeights Weights { get; }

    /// <summary>Loads <paramref name="modelDirectory"/> and merges the adapter in <paramref name="adapterDirectory"/> when given.</summary>
    public static LlamaModel Load(string modelDirectory, string? adapterDirectory = null, IComputeBackend? backend = null)
    {
        var weights = LlamaWeights.Load(modelDirectory);
        if (adapterDirectory is not null)
            LoraAdapter.Load(adapterDirectory, weights.Config).MergeInto(weights);
        return new LlamaModel(weights, backend ?? new CpuBackend());
    }

    /// <summary>
    /// Logits for every position of <paramref name="ids"/>, row-major [ids.Length × vocab]: row t is
    /// the distribution of the token after ids[0..t].
    /// </summary>
    public float[] Logits(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty) return [];
        lock (_graph) return _graph.Logits(PackedBatch.ForInference(ids));
    }
}
