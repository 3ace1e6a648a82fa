using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Six optimizer steps without checkpointing, with every layer keeping its own gated-MLP output h and with
    /// the layers sharing one h buffer (<c>GpuMemoryPlan.SharesGluOutput</c>), which the backward pass refills
    /// in the GLU backward kernel from the layer's gate and up: the per-step losses and the adapters must be equal
    /// bit for bit. down_proj's A gradient waits for h: after the stacked product (Llama without dropout), or after
    /// the plain products (a dropout setting; Gemma 3 with its sandwich norms and GeGLU).
    /// </summary>
    private KernelCheckResult SharedGluOutputEqualsKept(string name, ModelConfig model, double dropout)
    {
        var config = Config(checkpointing: false, dropout) with { PerDeviceTrainBatchSize = 4 };
        SixStepRun Train(bool share) => SixSteps(model, config, dataSeed: 23, dropoutKeys: 1000,
            adapter => Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null, shareGluOutput: share));
        var kept = Train(share: false);
        var shared = Train(share: true);
        var saved = kept.Plan.Activations - shared.Plan.Activations;
        var expected = 2L * model.IntermediateSize * 96 * config.PerDeviceTrainBatchSize * (model.NumLayers - 1);
        string? failed = !shared.Plan.SharesGluOutput || kept.Plan.SharesGluOutput ? "the plan did not follow the switch"
            : saved != expected ? $"sharing h saved {saved} bytes of activations, not {expected}"
            : null;
        return SameBytes(name, 23, kept, shared, $"one shared h ({saved / 1024} KiB less) vs each layer's own", failed);
    }
}
