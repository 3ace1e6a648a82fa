using FineTune.Core.Config;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Six optimizer steps under gradient checkpointing with a gpu_memory_limit that has room for half the layers kept whole
    /// (<c>GpuMemoryPlan.WholeLayers</c>) and without a limit (every layer recomputed): the per-step losses and the adapters
    /// must be equal bit for bit, since a limit must never change what a run trains, the plan must grow by exactly the whole
    /// layers' bytes, and the step must launch fewer kernels (the whole layers' recompute skipped, not redone). With dropout the
    /// whole layers keep the forward pass's masked products, which a recompute redraws; Gemma 3's sandwich norms recompute
    /// o_proj's and down_proj's products, which a whole layer keeps.
    /// </summary>
    private KernelCheckResult WholeLayersEqualRecomputed(string name, ModelConfig model, double dropout)
    {
        var config = Config(checkpointing: true, dropout) with { PerDeviceTrainBatchSize = 4 };
        var whole = model.NumLayers / 2;
        var limit = WholeLayersLimit(CudaTrainingDevice.PlanFor(model, new LoraAdapter(model, LoraSettings.From(config)), config, 96), whole);
        SixStepRun Train(TrainingConfig run) => SixSteps(model, run, dataSeed: 41, dropoutKeys: 5000,
            adapter => Gpu.CreateRandomModel(model, adapter, run, 96, seed: 2, log: null));
        var recomputed = Train(config);
        var kept = Train(config with { GpuMemoryLimit = limit });
        var added = kept.Plan.Activations - recomputed.Plan.Activations;
        string? failed = recomputed.Plan.WholeLayers != 0 ? $"without a limit the plan kept {recomputed.Plan.WholeLayers} layers whole"
            : kept.Plan.WholeLayers != whole ? $"the limit had room for {whole} whole layers, the plan kept {kept.Plan.WholeLayers}"
            : added != whole * kept.Plan.WholeLayerBytes ? $"the whole layers added {added} bytes of activations, not {whole} x {kept.Plan.WholeLayerBytes}"
            : LaunchesFewer(recomputed, kept, "keeping layers whole");
        return SameBytes(name, 41, recomputed, kept, $"{whole} of {model.NumLayers} layers kept whole ({added / 1024} KiB more) vs all recomputed", failed);
    }

    /// <summary>A gpu_memory_limit with room for <paramref name="wholeLayers"/> of <paramref name="plan"/>'s checkpointed layers kept whole, and half a layer more.</summary>
    private static long WholeLayersLimit(GpuMemoryPlan plan, int wholeLayers) => plan.Total + wholeLayers * plan.WholeLayerBytes + plan.WholeLayerBytes / 2;
}
