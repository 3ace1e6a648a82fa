using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Six optimizer steps under gradient checkpointing, with every layer keeping its q, k, v (<c>GpuMemoryPlan.KeepsQkv</c>,
    /// the default) and with the recompute running q/k/v's products, q/k norms and RoPE again: the per-step losses and the
    /// adapters must be equal bit for bit, and the plan must grow by exactly the kept tensors. The recompute still redoes the
    /// first norm and q/k/v's LoRA hidden values: one product for the group (Llama without dropout), one per projection from
    /// its own dropped input (a dropout setting), or with q/k norms and sandwich norms (Gemma 3).
    /// </summary>
    private KernelCheckResult KeptQkvEqualsRecomputed(string name, ModelConfig model, double dropout)
    {
        var config = Config(checkpointing: true, dropout) with { PerDeviceTrainBatchSize = 4 };
        SixStepRun Train(bool keep) => SixSteps(model, config, dataSeed: 29, dropoutKeys: 2000,
            adapter => Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null, keepQkv: keep));
        var recomputed = Train(keep: false);
        var kept = Train(keep: true);
        var added = kept.Plan.Activations - recomputed.Plan.Activations;
        // Every layer's own q/k/v, less the one set the recompute shared.
        var expected = GpuMemoryPlan.QkvBytes(model) * 96 * config.PerDeviceTrainBatchSize * (model.NumLayers - 1);
        string? failed = !kept.Plan.KeepsQkv || recomputed.Plan.KeepsQkv ? "the plan did not follow the switch"
            : added != expected ? $"keeping q/k/v added {added} bytes of activations, not {expected}"
            : LaunchesFewer(recomputed, kept, "keeping q/k/v");
        return SameBytes(name, 29, recomputed, kept, $"q/k/v kept ({added / 1024} KiB more) vs recomputed", failed);
    }
}
