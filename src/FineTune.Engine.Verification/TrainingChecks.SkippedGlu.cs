using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Six optimizer steps under gradient checkpointing with the recompute stopping after gate and up (the GLU backward
    /// kernel writes h, down_proj's LoRA hidden value and both its adapter gradients wait for it; the default) and with the
    /// recompute running the GLU forward pass and down_proj's hidden value as before: the per-step losses and the adapters
    /// must be equal bit for bit. Without dropout down_proj's A sits under its weight (its input gradient in the base
    /// product); with dropout down_proj runs its own products from its own redrawn mask.
    /// </summary>
    private KernelCheckResult SkippedGluEqualsRecomputed(string name, ModelConfig model, double dropout)
    {
        var config = Config(checkpointing: true, dropout) with { PerDeviceTrainBatchSize = 4 };
        var leftToBackward = new List<bool>();
        SixStepRun Train(bool skip) => SixSteps(model, config, dataSeed: 31, dropoutKeys: 3000, adapter =>
        {
            var m = Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null);
            m.SkipsRecomputedGlu = skip;
            leftToBackward.Add(m.GluOutputFromBackward);
            return m;
        });
        var recomputed = Train(skip: false);
        var skipped = Train(skip: true);
        // The switch must reach the runs, or the check would compare a run with itself.
        var failed = leftToBackward is not [false, true] ? "the switch did not change what the recompute leaves to the GLU backward kernel"
            : LaunchesFewer(recomputed, skipped, "skipping the GLU forward pass");
        return SameBytes(name, 31, recomputed, skipped, "recompute without the GLU forward pass vs with it", failed);
    }
}
