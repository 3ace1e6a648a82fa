using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cuda.Blas;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class TrainingChecks
{
    /// <summary>
    /// Variable-length SFT batches whose token-row counts (and loss-row counts) differ at every step,
    /// most of them inside a bucket rather than on its bound, so their products take the bucket's
    /// cuBLASLt algorithm (<see cref="PlanBuckets"/>). Trained from no plans, then again after the
    /// same batches in reverse order planned first (the buckets' plans made in another order, from
    /// other exact shapes first): losses and adapters must be equal bit for bit. A run with the
    /// heuristic for every exact shape must follow the same losses within the GPU-vs-CPU tolerance
    /// (other algorithms round differently, nothing more), and some shapes must have adopted their
    /// bucket's algorithm, or the check did not exercise it.
    /// </summary>
    private KernelCheckResult VarlenBucketedPlansRerunIdentical(string name, ModelConfig model)
    {
        const int batch = 8, longest = 200, count = 12;
        var config = Config(checkpointing: false, dropout: 0) with { PerDeviceTrainBatchSize = batch };
        var rng = new DeterministicRandom(23);
        TokenizedExample Example()
        {
            var length = 24 + rng.NextInt(longest - 24 + 1);
            var ids = Enumerable.Range(0, length).Select(_ => rng.NextInt(model.VocabSize)).ToArray();
            var prompt = length * (15 + rng.NextInt(46)) / 100;
            return new TokenizedExample(ids, ids.Select((_, i) => i >= prompt).ToArray());
        }
        var steps = Enumerable.Range(0, count).Select(_ => PackedBatch.FromExamples(Enumerable.Range(0, batch).Select(_ => Example()).ToList())).ToArray();
        var blas = Gpu.Context.Blas;

        (float[] Values, double[] Losses) Train(IReadOnlyList<PackedBatch> batches)
        {
            var adapter = new LoraAdapter(model, LoraSettings.From(config));
            adapter.Initialize(1);
            var losses = new double[batches.Count];
            using (var m = Gpu.CreateRandomModel(model, adapter, config, longest, seed: 2, log: null))
            {
                for (var i = 0; i < batches.Count; i++)
                {
                    m.ZeroGradients();
                    losses[i] = m.ForwardBackward(batches[i], 1f / batches[i].LossRows.Length);
                    m.ClipAndStep(m.GradNorm(), 1, i + 1, 1e-3);
                }
                m.CopyAdapterTo(adapter);
            }
            return ([.. adapter.Tensors.SelectMany(t => t.Value)], losses);
        }

        try
        {
            blas.BucketedPlans = true;
            blas.ForgetPlans();
            var first = Train(steps);
            var stats = blas.PlanStats;
            blas.ForgetPlans();
            Train([.. steps.Reverse()]);
            var rerun = Train(steps);
            blas.BucketedPlans = false;
            blas.ForgetPlans();
            var exact = Train(steps);
            var same = first.Values.AsSpan().SequenceEqual(rerun.Values) && first.Losses.AsSpan().SequenceEqual(rerun.Losses);
            var drift = first.Losses.Zip(exact.Losses, (b, e) => Math.Abs(b - e) / Math.Abs(e)).Max();
            // Rows as the engine lays them out: each sequence padded to a multiple of 16.
            var rows = steps.Select(s => s.SeqLengths.Sum(l => (l + 15) / 16 * 16)).Distinct().Count();
            return new KernelCheckResult(name, 23,
            [
                new OutputError($"per-step loss, bucketed plans vs the heuristic per exact shape ({rows} row counts; plans {stats.Fresh} by the heuristic, {stats.Adopted} adopted, {stats.Refused} refused)", drift, LossTolerance),
            ], same, stats.Adopted == 0 ? "no shape adopted its bucket's algorithm" : rows < count / 2 ? "the batches repeat their row counts" : null);
        }
        finally
        {
            blas.BucketedPlans = true;
            blas.ForgetPlans();
        }
    }
}
