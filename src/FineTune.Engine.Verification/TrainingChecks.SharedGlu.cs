using FineTune.Core.Datasets;
using FineTune.Engine.Lora;
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
        var rng = new DeterministicRandom(23);
        PackedBatch Batch(int[] lengths) => PackedBatch.FromExamples(lengths.Select(length =>
        {
            var ids = Enumerable.Range(0, length).Select(_ => rng.NextInt(model.VocabSize)).ToArray();
            return new TokenizedExample(ids, ids.Select((_, i) => i >= length / 4).ToArray());
        }).ToList());
        PackedBatch a = Batch([64, 40, 40, 23]), b = Batch([80, 33, 17, 60]);
        PackedBatch[] steps = [a, b, a, b, a, b];

        (float[] Values, double[] Losses, bool Shared, long ActivationBytes) Train(bool share)
        {
            var adapter = new LoraAdapter(model, LoraSettings.From(config));
            adapter.Initialize(1);
            var losses = new double[steps.Length];
            bool shared;
            long bytes;
            using (var m = Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null, shareGluOutput: share))
            {
                (shared, bytes) = (m.Plan.SharesGluOutput, m.Plan.Activations);
                for (var i = 0; i < steps.Length; i++)
                {
                    // Real masks where the config drops: h then reaches down_proj's A gradient through one.
                    if (dropout > 0) m.DropoutKey = 1000UL + (ulong)i;
                    m.ZeroGradients();
                    losses[i] = m.ForwardBackward(steps[i], 1f / steps[i].LossRows.Length);
                    m.ClipAndStep(m.GradNorm(), 1, i + 1, 1e-3);
                }
                m.CopyAdapterTo(adapter);
            }
            return ([.. adapter.Tensors.SelectMany(t => t.Value)], losses, shared, bytes);
        }
        var kept = Train(share: false);
        var shared = Train(share: true);
        var same = shared.Values.AsSpan().SequenceEqual(kept.Values) && shared.Losses.AsSpan().SequenceEqual(kept.Losses);
        var moved = shared.Values.Zip(kept.Values, (x, y) => (double)Math.Abs(x - y)).Max();
        var saved = kept.ActivationBytes - shared.ActivationBytes;
        var expected = 2L * model.IntermediateSize * 96 * config.PerDeviceTrainBatchSize * (model.NumLayers - 1);
        string? failed = !shared.Shared || kept.Shared ? "the plan did not follow the switch"
            : saved != expected ? $"sharing h saved {saved} bytes of activations, not {expected}"
            : null;
        return new KernelCheckResult(name, 23,
        [
            new OutputError($"largest adapter difference, one shared h ({saved / 1024} KiB less) vs each layer's own", moved, 0),
        ], same, failed);
    }
}
