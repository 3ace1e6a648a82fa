using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Six optimizer steps under gradient checkpointing with every layer keeping o_proj's and down_proj's LoRA hidden values
    /// (<c>GpuMemoryPlan.KeepsLoraHiddens</c>, the default) and with the recompute rebuilding them: the per-step losses and the
    /// adapters must be equal bit for bit, the plan must grow by exactly the kept values, and (without sandwich norms) the step must launch
    /// fewer kernels: the recompute must skip what it no longer needs, not redo o_proj's product. With dropout the kept values come
    /// from each projection's own mask of the forward pass, which the rebuilt ones redraw.
    /// </summary>
    private KernelCheckResult KeptHiddensEqualRecomputed(string name, ModelConfig model, double dropout)
    {
        var config = Config(checkpointing: true, dropout) with { PerDeviceTrainBatchSize = 4 };
        SixStepRun Train(bool keep) => SixSteps(model, config, dataSeed: 37, dropoutKeys: 4000,
            adapter => Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null, keepLoraHiddens: keep));
        var recomputed = Train(keep: false);
        var kept = Train(keep: true);
        var added = kept.Plan.Activations - recomputed.Plan.Activations;
        // Every layer's own o/down hidden values, less the ones the shared recompute set no longer holds.
        var expected = GpuMemoryPlan.LoraHiddenBytes(config.R, 2) * 96 * config.PerDeviceTrainBatchSize * (model.NumLayers - 1);
        string? failed = !kept.Plan.KeepsLoraHiddens || recomputed.Plan.KeepsLoraHiddens ? "the plan did not follow the switch"
            : added != expected ? $"keeping the hidden values added {added} bytes of activations, not {expected}"
            // Gemma 3's sandwich norms redo o_proj's and down_proj's products, hidden values included, either way.
            : model.SandwichNorms ? null
            : LaunchesFewer(recomputed, kept, "keeping the hidden values");
        return SameBytes(name, 37, recomputed, kept, $"o/down LoRA hidden values kept ({added / 1024} KiB more) vs recomputed", failed);
    }
}
