using FineTune.Core.Datasets;
using FineTune.Engine.Model;
using FineTune.Engine.Backends.Cuda.Training;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>Which training steps replay a captured CUDA graph, and which run eagerly (no GPU needed; the GPU side is <c>train_graph_replay_equals_eager*</c>).</summary>
public sealed class StepGraphCacheTests
{
    private sealed class FakeGraph : IDisposable
    {
        public bool Disposed { get; private set; }
        public void Dispose() => Disposed = true;
    }

    [Fact]
    public void A_shape_runs_eagerly_first_is_captured_when_it_comes_back_and_replays_after()
    {
        using var cache = new StepGraphCache<string, FakeGraph>();
        Assert.Equal(StepGraphAction.Eager, cache.Decide("4x2048", out _));
        Assert.Equal(StepGraphAction.Capture, cache.Decide("4x2048", out _));
        var graph = new FakeGraph();
        cache.Add("4x2048", graph);
        Assert.Equal(StepGraphAction.Replay, cache.Decide("4x2048", out var replayed));
        Assert.Same(graph, replayed);
        Assert.Equal(StepGraphAction.Replay, cache.Decide("4x2048", out _));
    }

    [Fact]
    public void Shapes_seen_once_each_never_pay_for_a_capture()
    {
        // A realistic SFT run: every batch has its own mix of lengths.
        using var cache = new StepGraphCache<int, FakeGraph>();
        for (var shape = 0; shape < 100; shape++) Assert.Equal(StepGraphAction.Eager, cache.Decide(shape, out _));
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void A_shape_whose_capture_failed_runs_eagerly_from_then_on()
    {
        using var cache = new StepGraphCache<string, FakeGraph>(captureAfter: 1);
        Assert.Equal(StepGraphAction.Capture, cache.Decide("dropout", out _));
        cache.Refuse("dropout");
        for (var i = 0; i < 5; i++) Assert.Equal(StepGraphAction.Eager, cache.Decide("dropout", out _));
        Assert.Equal(StepGraphAction.Capture, cache.Decide("other", out _));
    }

    [Fact]
    public void The_least_recently_used_graph_is_given_back_when_the_cache_is_full()
    {
        using var cache = new StepGraphCache<string, FakeGraph>(capacity: 2, captureAfter: 1);
        FakeGraph a = new(), b = new(), c = new();
        cache.Decide("a", out _);
        cache.Add("a", a);
        cache.Decide("b", out _);
        cache.Add("b", b);
        cache.Decide("a", out _); // a is now the most recent
        cache.Decide("c", out _);
        cache.Add("c", c);
        Assert.True(b.Disposed);
        Assert.False(a.Disposed);
        Assert.Equal(2, cache.Count);
        Assert.Equal(StepGraphAction.Replay, cache.Decide("a", out _));
        Assert.Equal(StepGraphAction.Capture, cache.Decide("b", out _));
    }

    [Fact]
    public void Clearing_gives_back_every_graph_and_starts_counting_again()
    {
        var cache = new StepGraphCache<string, FakeGraph>();
        var g = new FakeGraph();
        cache.Decide("s", out _);
        cache.Decide("s", out _);
        cache.Add("s", g);
        cache.Clear();
        Assert.True(g.Disposed);
        Assert.Equal(StepGraphAction.Eager, cache.Decide("s", out _));
        cache.Dispose();
    }

    [Theory]
    [InlineData(false, false, false, false, false, "switched off")]
    [InlineData(true, true, false, false, false, "dropout")]
    [InlineData(true, true, true, true, true, "dropout")]
    [InlineData(true, false, true, false, false, "offloaded")]
    [InlineData(true, false, false, true, false, "NCCL")]
    [InlineData(true, false, false, false, true, "synchronises")]
    [InlineData(true, false, false, false, false, null)]
    public void Steps_whose_launches_change_from_step_to_step_run_eagerly(bool on, bool dropout, bool offload, bool nccl, bool sync, string? reason)
    {
        var why = StepGraphPolicy.Blocker(on, dropout, offload, nccl, sync);
        if (reason is null) Assert.Null(why);
        else Assert.Contains(reason, why);
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("1", false)]
    [InlineData("0", true)]
    [InlineData("false", true)]
    [InlineData(" Off ", true)]
    public void The_environment_switch_turns_graph_replay_off(string? value, bool off) =>
        Assert.Equal(off, StepGraphPolicy.SwitchedOff(value));

    [Fact]
    public void Batches_with_the_same_padded_layout_share_a_step_key_and_other_layouts_do_not()
    {
        // The key is what fixes the launches: padded rows, loss rows, loss scale, backward, runs of equal length.
        StepShape Key(int[] lengths, float scale = 0.5f, bool backward = true)
        {
            var packed = PackedBatch.FromExamples([.. lengths.Select(n => new TokenizedExample([.. Enumerable.Range(1, n)], [.. Enumerable.Range(0, n).Select(i => i > 0)]))]);
            var b = PaddedBatch.From(packed, 16, 1000);
            return new StepShape(b.Rows, b.LossRows.Length, scale, backward, b.Segments);
        }
        Assert.Equal(Key([40, 20, 20]), Key([40, 20, 20]));
        Assert.Equal(Key([40, 20, 20]).GetHashCode(), Key([40, 20, 20]).GetHashCode());
        Assert.NotEqual(Key([40, 20, 20]), Key([20, 40, 20])); // same rows, other runs: other attention launches
        Assert.NotEqual(Key([40, 20, 20]), Key([40, 20, 21])); // other loss rows
        Assert.NotEqual(Key([40, 20, 20]), Key([40, 20, 20], scale: 0.25f));
        Assert.NotEqual(Key([40, 20, 20]), Key([40, 20, 20], backward: false));
        Assert.NotEqual(Key([40, 20, 20]), Key([40, 20, 20]) with { Switches = 1 });
    }
}
