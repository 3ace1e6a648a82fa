using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// Persistent worker threads for <see cref="CpuBackend.For"/>. A training step runs thousands of short
/// parallel loops (a layer's products, norms and activations); waking thread-pool workers through
/// <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/> for each one cost more than the
/// loops themselves on 16 cores. Here idle workers spin briefly on the next loop (then sleep), take
/// indices from a shared counter, and the caller returns once every index has run, without waiting
/// for workers that have not woken up. Which thread runs an index never changes what it computes, so
/// results do not depend on the scheduling.
/// </summary>
internal sealed class WorkerPool
{
    /// <summary>The process's pool; workers are created on first use, up to one fewer than the cores.</summary>
    public static readonly WorkerPool Shared = new();

    // How long an idle worker keeps polling for the next loop before it sleeps: longer than the serial
    // gaps between a step's loops, short enough not to hold cores while the caller does other work.
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    /// <summary>A counter alone on its cache line (64 bytes either side): sixteen cores taking indices
    /// from one counter should not also bounce the line holding the other counters.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 192)]
    private struct Counter
    {
        [FieldOffset(64)] public int Value;
    }

    private sealed class Loop
    {
        public Loop(Action<int> body, int count, int helpers)
        {
            Body = body;
            Count = count;
            Chunk = Math.Max(1, count / (4 * (helpers + 1)));
            Remaining.Value = count;
            Slots.Value = helpers;
        }

        public readonly Action<int> Body;
        public readonly int Count;
        // Indices are taken a few at a time so that loops over many short rows do not contend on the counter.
        public readonly int Chunk;
        public Counter Next;
        // Indices not yet run: each thread subtracts all it ran once, when the loop has no more to take.
        public Counter Remaining;
        public Counter Slots;
        public Exception? Error;
        public readonly ManualResetEventSlim Done = new(false, 0);
    }

    private readonly object _dispatch = new();
    private readonly object _sleep = new();
    private readonly List<Thread> _workers = [];
    private Loop? _loop;
    private int _sleepers;
    [ThreadStatic] private static bool _inLoop;

    /// <summary>
    /// Runs <paramref name="body"/>(0..count-1) on up to <paramref name="threads"/> threads including the
    /// caller. A loop started inside another (nested), or while another thread's loop is running, runs
    /// without the pool: inline when nested, on the .NET thread pool otherwise.
    /// </summary>
    public void For(int count, int threads, Action<int> body)
    {
        threads = Math.Min(threads, Math.Min(count, Environment.ProcessorCount));
        if (threads <= 1 || _inLoop)
        {
            for (var i = 0; i < count; i++) body(i);
            return;
        }
        if (!Monitor.TryEnter(_dispatch))
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            var loop = new Loop(body, count, threads - 1);
            Interlocked.Exchange(ref _loop, loop);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_sleep) Monitor.PulseAll(_sleep);
            Work(loop);
            // Spin on the counter first (the other threads' last indices finish within microseconds);
            // the event's own spinning backs off exponentially and noticed the end late.
            var start = Stopwatch.GetTimestamp();
            for (var spins = 1; Volatile.Read(ref loop.Remaining.Value) != 0 && Stopwatch.GetTimestamp() - start < SpinTicks; spins++)
            {
                // Yield now and then so that an oversubscribed machine still runs the threads doing the work.
                if (spins % 256 == 0) Thread.Yield();
                else Thread.SpinWait(1);
            }
            if (Volatile.Read(ref loop.Remaining.Value) != 0) loop.Done.Wait();
            Interlocked.Exchange(ref _loop, null);
            if (loop.Error is { } error) throw new AggregateException(error);
        }
        finally
        {
            Monitor.Exit(_dispatch);
        }
    }

    private static void Work(Loop loop)
    {
        _inLoop = true;
        try
        {
            int first, taken = 0;
            while ((first = Interlocked.Add(ref loop.Next.Value, loop.Chunk) - loop.Chunk) < loop.Count)
            {
                var end = Math.Min(loop.Count, first + loop.Chunk);
                try
                {
                    for (var i = first; i < end && loop.Error is null; i++) loop.Body(i);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref loop.Error, e, null);
                }
                taken += end - first;
            }
            if (taken > 0 && Interlocked.Add(ref loop.Remaining.Value, -taken) == 0) loop.Done.Set();
        }
        finally
        {
            _inLoop = false;
        }
    }

    private void EnsureWorkers(int count)
    {
        while (_workers.Count < count)
        {
            var worker = new Thread(WorkerMain) { IsBackground = true, Name = $"FineTune CPU worker {_workers.Count + 1}" };
            _workers.Add(worker);
            worker.Start();
        }
    }

    private void WorkerMain()
    {
        Loop? last = null;
        while (true)
        {
            var loop = WaitForLoop(last);
            last = loop;
            // Slots keep a loop to the caller's thread count even when more workers are awake.
            if (Interlocked.Decrement(ref loop.Slots.Value) >= 0) Work(loop);
        }
    }

    private Loop WaitForLoop(Loop? last)
    {
        var start = Stopwatch.GetTimestamp();
        var spins = 0;
        while (true)
        {
            var loop = Volatile.Read(ref _loop);
            if (loop is not null && loop != last) return loop;
            if (Stopwatch.GetTimestamp() - start < SpinTicks)
            {
                // Yield now and then so that an oversubscribed machine still runs the thread doing the work.
                if (++spins % 64 == 0) Thread.Yield();
                else Thread.SpinWait(20);
                continue;
            }
            lock (_sleep)
            {
                Interlocked.Increment(ref _sleepers);
                while ((loop = Volatile.Read(ref _loop)) is null || loop == last) Monitor.Wait(_sleep);
                Interlocked.Decrement(ref _sleepers);
                return loop;
            }
        }
    }
}
