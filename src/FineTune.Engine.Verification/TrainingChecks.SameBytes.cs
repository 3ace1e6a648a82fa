using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Per-step losses, the adapter's values after the steps, the plan the model ran under, and the kernels and copies of the
    /// last captured step graph (0 when steps ran eagerly): what a variant that skips work must launch fewer of.
    /// </summary>
    private sealed record SixStepRun(float[] Values, double[] Losses, GpuMemoryPlan Plan, int GraphNodes);

    /// <summary>
    /// Six optimizer steps, batches of 4 (96 tokens planned), on two fixed variable-length batches drawn with
    /// <paramref name="dataSeed"/> (the first quarter of each example a prompt): a random model (seed 2) from
    /// <paramref name="create"/> and an adapter initialized with seed 1. With dropout each step gets its own key from
    /// <paramref name="dropoutKeys"/>, so real masks reach every product that reads a dropped input.
    /// </summary>
    private SixStepRun SixSteps(ModelConfig model, TrainingConfig config, ulong dataSeed, ulong dropoutKeys,
        Func<LoraAdapter, CudaTrainingModel> create)
    {
        var rng = new DeterministicRandom(dataSeed);
        PackedBatch Batch(int[] lengths) => PackedBatch.FromExamples(lengths.Select(length =>
        {
            var ids = Enumerable.Range(0, length).Select(_ => rng.NextInt(model.VocabSize)).ToArray();
            return new TokenizedExample(ids, ids.Select((_, i) => i >= length / 4).ToArray());
        }).ToList());
        PackedBatch a = Batch([64, 40, 40, 23]), b = Batch([80, 33, 17, 60]);
        PackedBatch[] steps = [a, b, a, b, a, b];
        var adapter = new LoraAdapter(model, LoraSettings.From(config));
        adapter.Initialize(1);
        var losses = new double[steps.Length];
        GpuMemoryPlan plan;
        int nodes;
        using (var m = create(adapter))
        {
            plan = m.Plan;
            for (var i = 0; i < steps.Length; i++)
            {
                if (config.LoraDropout > 0) m.DropoutKey = dropoutKeys + (ulong)i;
                m.ZeroGradients();
                losses[i] = m.ForwardBackward(steps[i], 1f / steps[i].LossRows.Length);
                m.ClipAndStep(m.GradNorm(), 1, i + 1, 1e-3);
            }
            m.CopyAdapterTo(adapter);
            nodes = m.GraphStats.Nodes;
        }
        return new SixStepRun([.. adapter.Tensors.SelectMany(t => t.Value)], losses, plan, nodes);
    }

    /// <summary>Why <paramref name="lean"/>, which skips work <paramref name="full"/> does, is not the leaner step: null when its step graph has fewer nodes (or no graph was captured).</summary>
    private static string? LaunchesFewer(SixStepRun full, SixStepRun lean, string what) =>
        lean.GraphNodes > 0 && lean.GraphNodes >= full.GraphNodes ? $"{what} launched {lean.GraphNodes} graph nodes a step, not fewer than the {full.GraphNodes} without it" : null;

    /// <summary>Passes when <paramref name="variant"/> trained the same losses and adapter as <paramref name="baseline"/> bit for bit (and <paramref name="failed"/> is null).</summary>
    private static KernelCheckResult SameBytes(string name, int seed, SixStepRun baseline, SixStepRun variant, string what, string? failed)
    {
        var same = variant.Values.AsSpan().SequenceEqual(baseline.Values) && variant.Losses.AsSpan().SequenceEqual(baseline.Losses);
        var moved = variant.Values.Zip(baseline.Values, (x, y) => (double)Math.Abs(x - y)).Max();
        return new KernelCheckResult(name, seed, [new OutputError($"largest adapter difference, {what}", moved, 0)], same, failed);
    }
}
