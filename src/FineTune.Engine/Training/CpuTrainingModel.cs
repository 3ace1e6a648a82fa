using FineTune.Engine.Backends;
using FineTune.Engine.Distributed;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Training;

/// <summary>Trains on the CPU: <see cref="LlamaGraph"/> over float32 weights, the adapter's own arrays as the state.</summary>
public sealed class CpuTrainingDevice(IComputeBackend backend) : ITrainingDevice
{
    /// <inheritdoc />
    public string Name => backend.Name;

    /// <inheritdoc />
    public ITrainingModel CreateModel(BaseModel baseModel, LoraAdapter adapter, Core.Config.TrainingConfig config, int longestSequence, Action<string>? log) =>
        new CpuTrainingModel(new LlamaGraph(baseModel.Float32, adapter, backend, config.GradientCheckpointing), adapter,
            new AdamW(config.AdamBeta1, config.AdamBeta2, config.AdamEpsilon, config.WeightDecay));
}

/// <summary><see cref="ITrainingModel"/> over a <see cref="LlamaGraph"/>; gradients and moments live in the adapter's tensors.</summary>
public sealed class CpuTrainingModel(LlamaGraph graph, LoraAdapter adapter, AdamW optimizer) : ITrainingModel
{
    /// <inheritdoc />
    public ulong? DropoutKey { get => graph.DropoutKey; set => graph.DropoutKey = value; }

    /// <inheritdoc />
    public void ZeroGradients()
    {
        foreach (var t in adapter.Tensors) Array.Clear(t.Grad);
    }

    /// <inheritdoc />
    public double ForwardBackward(PackedBatch batch, float lossScale) => graph.ForwardBackward(batch, lossScale);

    /// <inheritdoc />
    /// <remarks>Each bucket's gradients are copied into one host buffer, summed over the ranks and copied back.</remarks>
    public void SumGradients(IRankGroup group)
    {
        if (group.Size == 1) return;
        var tensors = adapter.Tensors;
        var offsets = new long[tensors.Count + 1];
        for (var i = 0; i < tensors.Count; i++) offsets[i + 1] = offsets[i] + tensors[i].Grad.Length;
        foreach (var bucket in GradientBuckets.Plan(adapter.TensorLayers, offsets))
        {
            var flat = new float[bucket.Count];
            for (var t = bucket.FirstTensor; t < bucket.EndTensor; t++) tensors[t].Grad.CopyTo(flat, offsets[t] - bucket.Start);
            group.SumInRankOrder(flat);
            for (var t = bucket.FirstTensor; t < bucket.EndTensor; t++)
                flat.AsSpan((int)(offsets[t] - bucket.Start), tensors[t].Grad.Length).CopyTo(tensors[t].Grad);
        }
    }

    /// <inheritdoc />
    public double GradNorm() => AdamW.GradNorm(adapter.Tensors);

    /// <inheritdoc />
    public void ClipAndStep(double gradNorm, double maxGradNorm, int step, double learningRate)
    {
        AdamW.Clip(adapter.Tensors, gradNorm, maxGradNorm);
        optimizer.Step(adapter.Tensors, step, learningRate);
    }

    /// <inheritdoc />
    public void CopyAdapterTo(LoraAdapter target)
    {
        if (ReferenceEquals(target, adapter)) return;
        for (var i = 0; i < adapter.Tensors.Count; i++)
        {
            adapter.Tensors[i].Value.CopyTo(target.Tensors[i].Value, 0);
            adapter.Tensors[i].M.CopyTo(target.Tensors[i].M, 0);
            adapter.Tensors[i].V.CopyTo(target.Tensors[i].V, 0);
        }
    }

    /// <inheritdoc />
    public void LoadAdapter(LoraAdapter source)
    {
        if (ReferenceEquals(source, adapter)) return;
        for (var i = 0; i < adapter.Tensors.Count; i++)
        {
            source.Tensors[i].Value.CopyTo(adapter.Tensors[i].Value, 0);
            source.Tensors[i].M.CopyTo(adapter.Tensors[i].M, 0);
            source.Tensors[i].V.CopyTo(adapter.Tensors[i].V, 0);
        }
    }

    /// <inheritdoc />
    public long PeakMemoryBytes => System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;

    /// <inheritdoc />
    public void Dispose() { }
}
