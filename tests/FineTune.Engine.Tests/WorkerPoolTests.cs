using FineTune.Engine.Backends.Cpu;

namespace FineTune.Engine.Tests;

/// <summary>
/// The backend's parallel loops run every index exactly once however they are started: from several
/// threads at the same time (data-parallel ranks as threads share the process's workers), nested in
/// another loop, or after a loop whose body threw.
/// </summary>
public class WorkerPoolTests
{
    [Fact]
    public async Task Loops_started_from_several_threads_at_once_each_run_every_index_once()
    {
        var callers = Enumerable.Range(0, 6).Select(c => Task.Run(() =>
        {
            var be = new CpuBackend(4);
            for (var round = 0; round < 200; round++)
            {
                var hits = new int[37 + c * 11 + round % 5];
                be.For(hits.Length, i => Interlocked.Increment(ref hits[i]));
                Assert.All(hits, h => Assert.Equal(1, h));
            }
        })).ToArray();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromMinutes(2));
    }

    [Fact]
    public void A_loop_inside_a_loop_runs_on_the_threads_it_was_given()
    {
        var be = new CpuBackend(3);
        var hits = new int[20 * 30];
        be.For(20, i => be.For(30, j => Interlocked.Increment(ref hits[i * 30 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void An_exception_in_a_body_reaches_the_caller_and_the_next_loop_still_runs()
    {
        var be = new CpuBackend(2);
        var error = Assert.Throws<AggregateException>(() => be.For(100, i =>
        {
            if (i == 57) throw new InvalidOperationException("index 57");
        }));
        Assert.Equal("index 57", Assert.IsType<InvalidOperationException>(error.InnerException).Message);
        var hits = new int[100];
        be.For(hits.Length, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, h => Assert.Equal(1, h));
    }
}
