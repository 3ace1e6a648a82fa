using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Lora;
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
        var rng = new DeterministicRandom(29);
        PackedBatch Batch(int[] lengths) => PackedBatch.FromExamples(lengths.Select(length =>
        {
            var ids = Enumerable.Range(0, length).Select(_ => rng.NextInt(model.VocabSize)).ToArray();
            return new TokenizedExample(ids, ids.Select((_, i) => i >= length / 4).ToArray());
        }).ToList());
        PackedBatch a = Batch([64, 40, 40, 23]), b = Batch([80, 33, 17, 60]);
        PackedBatch[] steps = [a, b, a, b, a, b];

        (float[] Values, double[] Losses, bool KeepsQkv, long ActivationBytes) Train(bool keep)
        {
            var adapter = new LoraAdapter(model, LoraSettings.From(config));
            adapter.Initialize(1);
            var losses = new double[steps.Length];
            bool keeps;
            long bytes;
            using (var m = Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null, keepQkv: keep))
            {
                (keeps, bytes) = (m.Plan.KeepsQkv, m.Plan.Activations);
                for (var i = 0; i < steps.Length; i++)
                {
                    // Real masks where the config drops: the recompute must draw the same ones for q/k/v's hidden values.
                    if (dropout > 0) m.DropoutKey = 2000UL + (ulong)i;
                    m.ZeroGradients();
                    losses[i] = m.ForwardBackward(steps[i], 1f / steps[i].LossRows.Length);
                    m.ClipAndStep(m.GradNorm(), 1, i + 1, 1e-3);
                }
                m.CopyAdapterTo(adapter);
            }
            return ([.. adapter.Tensors.SelectMany(t => t.Value)], losses, keeps, bytes);
        }
        var recomputed = Train(keep: false);
        var kept = Train(keep: true);
        var same = kept.Values.AsSpan().SequenceEqual(recomputed.Values) && kept.Losses.AsSpan().SequenceEqual(recomputed.Losses);
        var moved = kept.Values.Zip(recomputed.Values, (x, y) => (double)Math.Abs(x - y)).Max();
        var added = kept.ActivationBytes - recomputed.ActivationBytes;
        // Every layer's own q/k/v, less the one set the recompute shared.
        var expected = GpuMemoryPlan.QkvBytes(model) * 96 * config.PerDeviceTrainBatchSize * (model.NumLayers - 1);
        string? failed = !kept.KeepsQkv || recomputed.KeepsQkv ? "the plan did not follow the switch"
            : added != expected ? $"keeping q/k/v added {added} bytes of activations, not {expected}"
            : null;
        return new KernelCheckResult(name, 29,
        [
            new OutputError($"largest adapter difference, q/k/v kept ({added / 1024} KiB more) vs recomputed", moved, 0),
        ], same, failed);
    }
}
