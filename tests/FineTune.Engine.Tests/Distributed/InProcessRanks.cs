using FineTune.Engine.Distributed;

namespace FineTune.Engine.Tests.Distributed;

/// <summary>
/// N ranks as threads of the test process, exchanging through a barrier: what the NCCL group does
/// between processes, for CPU tests of the trainer's multi-rank logic. The sum follows
/// <see cref="RankOrder"/> exactly as the NCCL group and the GPU kernel do.
/// </summary>
internal sealed class InProcessRanks
{
    private readonly Barrier _barrier;
    private readonly object?[] _slots;

    public InProcessRanks(int size)
    {
        Size = size;
        _slots = new object?[size];
        _barrier = new Barrier(size);
    }

    public int Size { get; }

    public IRankGroup Rank(int rank) => new Member(this, rank);

    /// <summary>Runs <paramref name="body"/> on every rank at once; rethrows the first rank's exception.</summary>
    public T[] Run<T>(Func<IRankGroup, T> body)
    {
        var tasks = Enumerable.Range(0, Size).Select(r => Task.Factory.StartNew(() => body(Rank(r)), TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            Task.WaitAll(tasks);
        }
        catch (AggregateException)
        {
            throw tasks.First(t => t.IsFaulted).Exception!.InnerException!;
        }
        return tasks.Select(t => t.Result).ToArray();
    }

    private object?[] Exchange(int rank, object value)
    {
        _slots[rank] = value;
        // A rank that threw never arrives: fail the others instead of hanging the test run.
        if (!_barrier.SignalAndWait(TimeSpan.FromSeconds(120))) throw new TimeoutException("a rank did not reach the collective");
        var all = (object?[])_slots.Clone();
        if (!_barrier.SignalAndWait(TimeSpan.FromSeconds(120))) throw new TimeoutException("a rank did not leave the collective");
        return all;
    }

    private sealed class Member(InProcessRanks hub, int rank) : IRankGroup
    {
        public int Rank => rank;
        public int Size => hub.Size;

        public double[] AllGather(ReadOnlySpan<double> values) =>
            hub.Exchange(rank, values.ToArray()).SelectMany(v => (double[])v!).ToArray();

        public bool Any(bool mine) => hub.Exchange(rank, mine).Any(v => (bool)v!);

        public void SumInRankOrder(Span<float> values)
        {
            var gathered = hub.Exchange(rank, values.ToArray()).SelectMany(v => (float[])v!).ToArray();
            RankOrder.Sum(gathered, Size, values);
        }

        public void Dispose() { }
    }
}
