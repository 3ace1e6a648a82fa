using FineTune.Core.Config;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Training;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>Trains on one NVIDIA GPU (<see cref="CudaTrainingModel"/>), after checking the run's memory plan against free memory.</summary>
public sealed class CudaTrainingDevice : ITrainingDevice, IDisposable
{
    private readonly CudaTrainingContext _ctx;

    private CudaTrainingDevice(CudaTrainingContext ctx) => _ctx = ctx;

    /// <summary>Opens GPU <paramref name="ordinal"/> (FT31xx naming what is missing when it cannot).</summary>
    public static CudaTrainingDevice Open(int ordinal = 0) => new(CudaTrainingContext.Open(ordinal));

    /// <summary>The GPU and its libraries.</summary>
    public CudaTrainingContext Context => _ctx;

    /// <inheritdoc />
    public string Name => $"cuda ({_ctx.Device.Name})";

    /// <summary>The plan of a run of <paramref name="config"/> whose longest sequence has <paramref name="longestSequence"/> tokens.</summary>
    /// <remarks>
    /// A preference micro-batch holds a chosen and a rejected sequence per pair, end to end: the plan counts
    /// a pair as one sequence of twice the length, so its batch stays per_device_train_batch_size (pairs),
    /// which is what a suggestion to halve it means.
    /// </remarks>
    public static GpuMemoryPlan PlanFor(ModelConfig model, LoraAdapter adapter, TrainingConfig config, int longestSequence, bool? keepAttention = null, bool? shareGluOutput = null, bool? keepQkv = null,
        bool? keepLoraHiddens = null)
    {
        var padded = (Math.Max(1, longestSequence) + CudaTrainingModel.SequenceMultiple - 1) / CudaTrainingModel.SequenceMultiple * CudaTrainingModel.SequenceMultiple;
        var length = config.IsPreference ? 2 * padded : padded;
        var parameters = adapter.Tensors.Sum(t => (long)t.Value.Length);
        return GpuMemoryPlan.For(model, adapter.Settings.Rank, adapter.Settings.Targets.Count, parameters, config.PerDeviceTrainBatchSize, length, config.GradientCheckpointing,
            FourBitSettings.From(config), keepAttention, config.OffloadCheckpoints,
            // As CudaTrainingModel.AddSpareColumns decides (the per-group check there is per layer).
            spareColumnTargets: adapter.Settings.Dropout == 0 && adapter.Settings.Rank % 8 == 0 && adapter.TensorLayers.Distinct().Count() == model.NumLayers ? adapter.Settings.Targets : null,
            shareGluOutput: shareGluOutput, keepQkv: keepQkv,
            residualLoraTargets: CudaActivations.KeptLoraHiddens.Count(adapter.Settings.Targets.Contains), keepLoraHiddens: keepLoraHiddens);
    }

    /// <inheritdoc />
    /// <remarks>The weights go to the GPU one tensor at a time (<see cref="CudaModelWeights.Stream"/>): the host never holds the model.</remarks>
    public ITrainingModel CreateModel(BaseModel baseModel, LoraAdapter adapter, TrainingConfig config, int longestSequence, Action<string>? log)
    {
        var plan = Fit(PlanFor(baseModel.Config, adapter, config, longestSequence), baseModel.Config, adapter, config.GpuMemoryLimit, log);
        var deviceWeights = CudaModelWeights.Stream(_ctx, baseModel.Config, baseModel.Files, fourBit: plan.FourBit, offload: plan.OffloadCheckpoints);
        try
        {
            return new CudaTrainingModel(_ctx, deviceWeights, ownsWeights: true, adapter, config, plan);
        }
        catch
        {
            deviceWeights.Dispose();
            throw;
        }
    }

    /// <summary>A model over random bf16 weights made on the device (benchmarks at shapes whose weights are not at hand).</summary>
    /// <remarks><paramref name="keepAttention"/>, <paramref name="shareGluOutput"/>, <paramref name="keepQkv"/>, <paramref name="keepLoraHiddens"/>: the plan's rules overridden (the benchmark's A/Bs, the checks).</remarks>
    public CudaTrainingModel CreateRandomModel(ModelConfig model, LoraAdapter adapter, TrainingConfig config, int sequenceLength, ulong seed, Action<string>? log, bool? keepAttention = null, bool? shareGluOutput = null, bool? keepQkv = null,
        bool? keepLoraHiddens = null)
    {
        var plan = Fit(PlanFor(model, adapter, config, sequenceLength, keepAttention, shareGluOutput, keepQkv, keepLoraHiddens), model, adapter, config.GpuMemoryLimit, log);
        var deviceWeights = CudaModelWeights.Random(_ctx, model, seed, plan.FourBit, plan.OffloadCheckpoints);
        return new CudaTrainingModel(_ctx, deviceWeights, ownsWeights: true, adapter, config, plan);
    }

    /// <summary>
    /// The plan the run takes in the GPU's free memory, or in <paramref name="limit"/> bytes (gpu_memory_limit) when that is less
    /// (<see cref="GpuMemoryPlan.KeepingWhatFits"/>; under a limit with checkpointing, <see cref="GpuMemoryPlan.KeepingWholeLayers"/>), logged;
    /// FT3107 with a lora.yaml suggestion when none fits.
    /// </summary>
    private GpuMemoryPlan Fit(GpuMemoryPlan plan, ModelConfig model, LoraAdapter adapter, long? limit, Action<string>? log)
    {
        var (free, _) = _ctx.Device.MemoryInfo();
        // What this process already holds in the pool is reusable by the run.
        var available = free + (_ctx.Device.Memory.BytesReserved - _ctx.Device.Memory.BytesInUse);
        var budget = Math.Min(available, limit ?? long.MaxValue);
        var parameters = adapter.Tensors.Sum(t => (long)t.Value.Length);
        var lean = plan.KeepingWhatFits(model, adapter.Settings.Rank, adapter.Settings.Targets.Count, parameters, budget);
        // Only a limit the user set is spent on speed: without one, checkpointing keeps to its own footprint whatever the GPU has free.
        var fitted = limit is null ? lean : lean.KeepingWholeLayers(model.NumLayers, budget);
        log?.Invoke(fitted.Describe(_ctx.Device.Name, available, limit));
        if (fitted.Total <= budget)
        {
            if (fitted.WholeLayers > 0)
                log?.Invoke($"Gradient checkpointing recomputes {model.NumLayers - fitted.WholeLayers} of {model.NumLayers} layers: the other {fitted.WholeLayers} " +
                            $"keep their activations within gpu_memory_limit ({GpuMemoryPlan.Gib(limit!.Value)}), the same training, faster.");
            else if (!ReferenceEquals(lean, plan))
                log?.Invoke($"Gradient checkpointing keeps less to fit ({GpuMemoryPlan.Gib(plan.Total)} with every kept tensor): the backward pass recomputes " +
                            (fitted.KeepsAttention ? "each layer's q, k and v" : "each layer's q, k, v and attention output") + ", a few percent slower.");
            if (fitted.FasterFit(model, adapter.Settings.Rank, adapter.Settings.Targets.Count, parameters, budget) is { } hint) log?.Invoke(hint);
            else if (limit is null && fitted.WholeLayersHint(model.NumLayers, available) is { } whole) log?.Invoke(whole);
            return fitted;
        }
        var suggestion = plan.Suggest(model, adapter.Settings.Rank, adapter.Settings.Targets.Count, parameters, budget);
        var room = limit is { } l && l < available
            ? $"gpu_memory_limit in lora.yaml allows {GpuMemoryPlan.Gib(l)} ({_ctx.Device.Name} has {GpuMemoryPlan.Gib(available)} free)"
            : $"{_ctx.Device.Name} has {GpuMemoryPlan.Gib(available)} free";
        throw new FineTuneException(CudaErrors.PlanDoesNotFit,
            $"This run needs {GpuMemoryPlan.Gib(fitted.Total)} of GPU memory but {room}. " +
            (suggestion is null
                ? "Even one short sequence with gradient checkpointing does not fit: use a smaller base model or --device cpu."
                : $"In lora.yaml, set {suggestion}."));
    }

    /// <inheritdoc />
    public void Dispose() => _ctx.Dispose();
}
