using FineTune.Engine.Backends;
using FineTune.Engine.Distributed;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Training;

/// <summary>Trains on the CPU: <see cref="LlamaGraph"/> over float32 weights, the adapter's own arrays as the state.</summary>
public sealed class CpuTrainingDevice(IComputeBackend backend) : ITrainingDevice
{
    /// <inheritdoc />
    public string Name => backend.Name;

    /// <inheritdoc />
    /// <remarks>
    /// With <c>load_in_4bit</c> the graph multiplies with the projections after 4-bit storage
    /// (<see cref="FourBitLlamaWeights"/>), a copy of its own: <see cref="BaseModel.Float32"/> stays the
    /// original weights, which a merge reads.
    /// </remarks>
    public ITrainingModel CreateModel(BaseModel baseModel, LoraAdapter adapter, Core.Config.TrainingConfig config, int longestSequence, Action<string>? log)
    {
        var weights = baseModel.Float32;
        if (FourBitSettings.From(config) is { } fourBit)
        {
            weights = FourBitLlamaWeights.Dequantized(LlamaWeights.Load(baseModel.Config, baseModel.Files), fourBit);
            log?.Invoke($"Base projections: {fourBit} (the CPU multiplies their dequantized float32 values).");
        }
        return new CpuTrainingModel(new LlamaGraph(weights, adapter, backend, config.GradientCheckpointing), adapter,
            new AdamW(config.AdamBeta1, config.AdamBeta2, config.AdamEpsilon, config.WeightDecay));
    }
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
    public (double[] RowLoss, double[] RowLogitMeans) ForwardBackwardRows(PackedBatch batch, Func<double[], float[]?> rowScales, bool adapterEnabled = true)
    {
        graph.AdapterEnabled = adapterEnabled;
        try
        {
            var loss = graph.ForwardBackwardRows(batch, rowScales);
            return (loss, graph.LastRowLogitMeans);
        }
        finally
        {
            graph.AdapterEnabled = true;
        }
    }

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
