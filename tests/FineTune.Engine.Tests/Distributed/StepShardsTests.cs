using FineTune.Engine.Distributed;
using FineTune.Engine.Training;

namespace FineTune.Engine.Tests.Distributed;

/// <summary>How a step's examples are dealt to ranks: the same examples as one GPU, balanced by tokens, one GPU unchanged.</summary>
public class StepShardsTests
{
    private static int[] Lengths(int count, int seed)
    {
        var rng = new DeterministicRandom((ulong)seed);
        // Log-normal-ish SFT lengths: mostly short, a few long.
        return Enumerable.Range(0, count).Select(_ => 16 + (int)Math.Exp(3 + 1.5 * rng.NextDouble() + 1.5 * rng.NextDouble())).ToArray();
    }

    [Theory]
    [InlineData(24, 2, 2)]
    [InlineData(23, 4, 3)] // the last micro-batch of an epoch is short, and steps span epochs
    [InlineData(3, 4, 2)]  // every micro-batch is the whole (short) epoch
    [InlineData(10, 1, 1)]
    public void One_rank_trains_exactly_the_plans_micro_batches(int examples, int batch, int accumulation)
    {
        var plan = new BatchPlan(examples, batch, accumulation, seed: 5, maxSteps: 40, epochs: 0);
        var lengths = Lengths(examples, 1);
        for (var step = 0; step < plan.TotalSteps; step++)
        {
            var expected = Enumerable.Range(0, accumulation).Select(m => plan.Batch(step, m)).ToArray();
            var actual = StepShards.Split(plan, step, i => lengths[i], 1);
            Assert.Single(actual);
            Assert.Equal(expected, actual[0]);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(8)]
    public void Every_rank_count_trains_the_same_examples_per_step_balanced_by_tokens(int ranks)
    {
        const int examples = 203, batch = 8, accumulation = 4;
        var plan = new BatchPlan(examples, batch, accumulation, seed: 9, maxSteps: 0, epochs: 3);
        var lengths = Lengths(examples, 2);
        for (var step = 0; step < plan.TotalSteps; step++)
        {
            var stepExamples = Enumerable.Range(0, accumulation).SelectMany(m => plan.Batch(step, m)).Order().ToArray();
            var shards = StepShards.Split(plan, step, i => lengths[i], ranks);
            Assert.Equal(ranks, shards.Length);
            Assert.Equal(stepExamples, shards.SelectMany(r => r).SelectMany(b => b).Order().ToArray());

            // Longest-first dealing: no rank exceeds the mean by more than one example.
            var loads = shards.Select(r => r.SelectMany(b => b).Sum(i => (long)lengths[i])).ToArray();
            var mean = loads.Average();
            var longest = stepExamples.Max(i => lengths[i]);
            Assert.True(loads.Max() <= mean + longest, $"step {step}: loads {string.Join(",", loads)}, mean {mean}, longest {longest}");

            foreach (var rank in shards)
                foreach (var micro in rank)
                {
                    Assert.InRange(micro.Length, 1, batch);
                    // A micro-batch never mixes epochs (so one rank reproduces the plan). A step that spans two
                    // epochs may hold an example twice, once from each: any epoch of the step that has them all will do.
                    Assert.Contains(EpochsOf(plan, step), epoch => micro.All(epoch.Contains));
                }
        }
    }

    [Fact]
    public void Dealing_beats_an_equal_split_of_examples_on_skewed_lengths()
    {
        // One long example and many short ones: an equal number of examples per rank puts the long one
        // on top of a full share; dealing by tokens gives its rank nothing else.
        int[] lengths = [2000, .. Enumerable.Repeat(100, 15)];
        var owner = StepShards.Deal(lengths, 2);
        var loads = new long[2];
        for (var i = 0; i < lengths.Length; i++) loads[owner[i]] += lengths[i];
        Assert.Equal(new long[] { 2000, 1500 }, loads);
    }

    [Fact]
    public void More_ranks_than_examples_leaves_some_ranks_without_work()
    {
        var plan = new BatchPlan(3, 3, 1, seed: 1, maxSteps: 1, epochs: 0);
        var shards = StepShards.Split(plan, 0, i => 10 + i, 5);
        Assert.Equal(3, shards.Count(r => r.Length == 1));
        Assert.Equal(2, shards.Count(r => r.Length == 0));
    }

    private static IEnumerable<HashSet<int>> EpochsOf(BatchPlan plan, int step) =>
        Enumerable.Range(0, plan.Accumulation).GroupBy(m => plan.EpochOf(step, m)).Select(g => g.SelectMany(m => plan.Batch(step, m)).ToHashSet());
}
