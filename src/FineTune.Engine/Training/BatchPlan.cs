namespace FineTune.Engine.Training;

/// <summary>
/// Which examples each micro-batch of each optimizer step uses. Micro-batches form one stream over
/// epochs; each epoch is a Fisher-Yates shuffle of the examples by <see cref="DeterministicRandom"/>
/// seeded with (seed, epoch), so any step's batch is known without replaying earlier ones — a
/// resumed run sees exactly the batches an uninterrupted one would.
/// </summary>
public sealed class BatchPlan
{
    private readonly int _count;
    private readonly int _seed;
    private readonly Dictionary<int, int[]> _orders = [];

    /// <summary>Plans <paramref name="exampleCount"/> examples in micro-batches of <paramref name="batchSize"/>, <paramref name="accumulation"/> per step.</summary>
    public BatchPlan(int exampleCount, int batchSize, int accumulation, int seed, int maxSteps, double epochs)
    {
        if (exampleCount <= 0) throw new ArgumentOutOfRangeException(nameof(exampleCount));
        _count = exampleCount;
        _seed = seed;
        BatchSize = batchSize;
        Accumulation = accumulation;
        BatchesPerEpoch = (exampleCount + batchSize - 1) / batchSize;
        var stepsPerEpoch = Math.Max(1, BatchesPerEpoch / accumulation);
        TotalSteps = maxSteps > 0 ? maxSteps : Math.Max(1, (int)Math.Ceiling(epochs * stepsPerEpoch));
        StepsPerEpoch = stepsPerEpoch;
    }

    /// <summary>Examples per micro-batch.</summary>
    public int BatchSize { get; }
    /// <summary>Micro-batches per optimizer step.</summary>
    public int Accumulation { get; }
    /// <summary>Micro-batches in one pass over the data (the last one may be short).</summary>
    public int BatchesPerEpoch { get; }
    /// <summary>Optimizer steps per epoch, for the fractional epoch in metrics.</summary>
    public int StepsPerEpoch { get; }
    /// <summary>Optimizer steps of the run.</summary>
    public int TotalSteps { get; }

    /// <summary>Example indices of micro-batch <paramref name="micro"/> of the 0-based optimizer step <paramref name="step"/>.</summary>
    public int[] Batch(int step, int micro)
    {
        var global = (long)step * Accumulation + micro;
        var epoch = (int)(global / BatchesPerEpoch);
        var index = (int)(global % BatchesPerEpoch);
        var order = Order(epoch);
        var start = index * BatchSize;
        return order[start..Math.Min(_count, start + BatchSize)];
    }

    /// <summary>The epoch micro-batch <paramref name="micro"/> of step <paramref name="step"/> belongs to (a step may span two).</summary>
    public int EpochOf(int step, int micro) => (int)(((long)step * Accumulation + micro) / BatchesPerEpoch);

    /// <summary>The shuffled order of one epoch.</summary>
    public int[] Order(int epoch)
    {
        lock (_orders)
        {
            if (_orders.TryGetValue(epoch, out var cached)) return cached;
            var order = Enumerable.Range(0, _count).ToArray();
            var rng = new DeterministicRandom(((ulong)(uint)_seed << 32) | (uint)epoch);
            for (var i = _count - 1; i > 0; i--)
            {
                var j = rng.NextInt(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
            if (_orders.Count > 4) _orders.Clear();
            _orders[epoch] = order;
            return order;
        }
    }
}
