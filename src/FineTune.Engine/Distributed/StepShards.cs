using FineTune.Engine.Training;

namespace FineTune.Engine.Distributed;

/// <summary>
/// Which examples each rank trains on in one optimizer step. Every rank plans every step alike
/// from the same <see cref="BatchPlan"/>, so no rank tells another anything:
/// <list type="bullet">
/// <item>the step's examples are exactly the ones a single GPU uses (the global batch does not
/// grow with the GPU count), so losses and resumption do not depend on it;</item>
/// <item>they are dealt by tokens, longest first, each to the rank with the fewest tokens so far
/// (lowest rank on a tie): no rank exceeds the mean by more than one example's length;</item>
/// <item>a rank's examples keep the step's order and are cut into micro-batches of at most
/// <c>per_device_train_batch_size</c> examples that never span two epochs — with one rank that
/// gives back the plan's own micro-batches, so one GPU trains exactly as before.</item>
/// </list>
/// </summary>
public static class StepShards
{
    /// <summary>
    /// The micro-batches (example indices) of every rank for 0-based <paramref name="step"/>;
    /// <paramref name="tokens"/> gives an example's length. A rank may get none when the step has
    /// fewer examples than ranks; it still takes part in the gradient sum, with zeros.
    /// </summary>
    public static int[][][] Split(BatchPlan plan, int step, Func<int, int> tokens, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        var examples = new List<(int Example, int Epoch)>();
        for (var m = 0; m < plan.Accumulation; m++)
        {
            var epoch = plan.EpochOf(step, m);
            foreach (var e in plan.Batch(step, m)) examples.Add((e, epoch));
        }
        var owner = Deal(examples.Select(e => tokens(e.Example)).ToArray(), ranks);
        var result = new int[ranks][][];
        for (var r = 0; r < ranks; r++)
        {
            var batches = new List<int[]>();
            var current = new List<int>();
            var currentEpoch = -1;
            for (var i = 0; i < examples.Count; i++)
            {
                if (owner[i] != r) continue;
                if (current.Count > 0 && (current.Count == plan.BatchSize || examples[i].Epoch != currentEpoch))
                {
                    batches.Add([.. current]);
                    current.Clear();
                }
                current.Add(examples[i].Example);
                currentEpoch = examples[i].Epoch;
            }
            if (current.Count > 0) batches.Add([.. current]);
            result[r] = [.. batches];
        }
        return result;
    }

    /// <summary>
    /// The rank of each item: longest first (earlier item on equal length), each to the rank with
    /// the least load so far (lowest rank on a tie). Deterministic, so every rank computes the same.
    /// </summary>
    public static int[] Deal(IReadOnlyList<int> lengths, int ranks)
    {
        var owner = new int[lengths.Count];
        if (ranks == 1) return owner;
        var load = new long[ranks];
        var order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ThenBy(i => i);
        foreach (var i in order)
        {
            var best = 0;
            for (var r = 1; r < ranks; r++)
                if (load[r] < load[best]) best = r;
            owner[i] = best;
            load[best] += lengths[i];
        }
        return owner;
    }
}
