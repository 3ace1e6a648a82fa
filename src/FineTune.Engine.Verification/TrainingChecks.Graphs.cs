using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Ten optimizer steps over four batches of two shapes (variable-length examples: several runs of
    /// equal padded length each, so the single attention launch's tables are in play), with each step
    /// replayed from a captured CUDA graph once its shape repeats, and with every launch queued eagerly.
    /// Batches of one shape hold different tokens, so a replay must read the newly staged batch. The
    /// per-step losses and the final adapters must be equal bit for bit, every step from a shape's
    /// second sighting on must have run as a graph, and a second graph run must give the same bytes.
    /// </summary>
    private KernelCheckResult GraphReplayEqualsEager(string name, ModelConfig model, bool checkpointing, bool fourBit = false)
    {
        var config = Config(checkpointing, dropout: 0) with { PerDeviceTrainBatchSize = 6, LoadIn4Bit = fourBit };
        var rng = new DeterministicRandom(17);
        TokenizedExample Example(int length)
        {
            var ids = Enumerable.Range(0, length).Select(_ => rng.NextInt(model.VocabSize)).ToArray();
            return new TokenizedExample(ids, ids.Select((_, i) => i >= length / 3).ToArray());
        }
        PackedBatch Batch(int[] lengths) => PackedBatch.FromExamples(lengths.Select(Example).ToList());
        int[] first = [70, 40, 40, 23, 23, 23], second = [90, 90, 33, 17, 17, 60];
        var a1 = Batch(first);
        var b1 = Batch(second);
        var a2 = Batch(first);
        var b2 = Batch(second);
        PackedBatch[] steps = [a1, b1, a2, b2, a1, b1, a2, b2, a1, b2];
        // From each shape's second sighting on: steps 3..10.
        const int graphSteps = 8;

        (float[] Values, double[] Losses, (long Replayed, int Captured, int Nodes) Stats, string? Failure) Train(bool graphs)
        {
            var adapter = new LoraAdapter(model, LoraSettings.From(config));
            adapter.Initialize(1);
            var losses = new double[steps.Length];
            (long, int, int) stats;
            string? failure;
            using (var m = Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null))
            {
                m.StepGraphs = graphs;
                for (var i = 0; i < steps.Length; i++)
                {
                    m.ZeroGradients();
                    losses[i] = m.ForwardBackward(steps[i], 1f / steps[i].LossRows.Length);
                    m.ClipAndStep(m.GradNorm(), 1, i + 1, 1e-3);
                }
                m.CopyAdapterTo(adapter);
                stats = m.GraphStats;
                failure = m.GraphFailure;
            }
            return ([.. adapter.Tensors.SelectMany(t => t.Value)], losses, stats, failure);
        }
        var eager = Train(graphs: false);
        var graph = Train(graphs: true);
        var again = Train(graphs: true);
        var same = graph.Values.AsSpan().SequenceEqual(eager.Values) && graph.Losses.AsSpan().SequenceEqual(eager.Losses);
        var moved = graph.Values.Zip(eager.Values, (x, y) => (double)Math.Abs(x - y)).Max();
        var lossMoved = graph.Losses.Zip(eager.Losses, (x, y) => Math.Abs(x - y) / Math.Max(1e-30, Math.Abs(y))).Max();
        string? failed = graph.Failure is { } f ? "a capture failed: " + f
            : graph.Stats.Replayed != graphSteps ? $"{graph.Stats.Replayed} of the {graphSteps} repeated-shape steps ran as a graph"
            : eager.Stats.Replayed != 0 ? "graphs ran while switched off"
            : !graph.Values.AsSpan().SequenceEqual(again.Values) ? "two graph runs differ"
            : null;
        return new KernelCheckResult(name, 17,
        [
            new OutputError($"largest adapter difference, graphs ({graph.Stats.Captured} captured, {graph.Stats.Nodes} nodes in the last) vs eager launches", moved, 0),
            new OutputError("largest relative per-step loss difference", lossMoved, 0),
        ], same, failed);
    }
}
