using FineTune.Engine.Backends.Cuda.Blas;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// Which cuBLASLt algorithm a product shape gets (no GPU needed: a fake planner stands in for the
/// heuristic and <c>cublasLtMatmulAlgoCheck</c>; the GPU side is <c>train_varlen_bucketed_plans_rerun_identical</c>).
/// </summary>
public sealed class GemmPlanCacheTests
{
    // A Linear layer's forward product over `rows` token rows (M is the rows) and its weight gradient (K is).
    private static GemmShape Forward(int rows) => new(rows, 2048, 2048, false, true, false, 2048, 2048, 2048);
    private static GemmShape WeightGradient(int rows) => new(2048, 16, rows, true, false, true, 2048, 16, 16);

    private sealed record FakePlan(GemmShape Shape, string Algorithm);

    private sealed class FakePlanner(Func<GemmShape, FakePlan, bool>? accepts = null) : IGemmPlanner<FakePlan>
    {
        public List<GemmShape> HeuristicCalls { get; } = [];
        public List<FakePlan> Released { get; } = [];

        // The heuristic's pick stands for anything derived from the shape it was asked about.
        public FakePlan Fresh(GemmShape shape)
        {
            HeuristicCalls.Add(shape);
            return new FakePlan(shape, $"best for {shape.M}x{shape.N}x{shape.K}");
        }

        public FakePlan? Adopt(GemmShape shape, FakePlan model) =>
            accepts is null || accepts(shape, model) ? new FakePlan(shape, model.Algorithm) : null;

        public void Release(FakePlan plan) => Released.Add(plan);
    }

    [Theory]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 32)]
    [InlineData(128, 128)]
    [InlineData(129, 144)]
    [InlineData(4096, 4096)]
    [InlineData(4097, 4608)]
    [InlineData(5613, 5632)]
    [InlineData(5931, 6144)]
    [InlineData(7680, 7680)]
    [InlineData(8147, 8192)]
    [InlineData(8193, 9216)]
    [InlineData(32768, 32768)]
    public void A_row_count_maps_to_the_next_eighth_of_an_octave(int rows, int bound) =>
        Assert.Equal(bound, PlanBuckets.UpperBound(rows));

    [Fact]
    public void Every_bound_is_its_own_bound_less_than_an_eighth_above_its_rows_and_never_goes_down()
    {
        var previous = 0;
        for (var rows = 1; rows <= 70_000; rows++)
        {
            var bound = PlanBuckets.UpperBound(rows);
            Assert.True(bound >= rows && bound >= previous, $"{rows} -> {bound}");
            Assert.Equal(bound, PlanBuckets.UpperBound(bound));
            Assert.True(bound - rows < Math.Max(16, rows / 8.0), $"{rows} -> {bound}: an eighth or more above");
            previous = bound;
        }
        // 1/8 octave: 8 bounds per doubling above the 16-row steps.
        Assert.Equal(8, Enumerable.Range(4097, 4096).Select(PlanBuckets.UpperBound).Distinct().Count());
    }

    [Fact]
    public void The_token_rows_are_M_unless_A_is_transposed_then_K()
    {
        Assert.Equal(Forward(5931) with { M = 6144 }, PlanBuckets.Representative(Forward(5931)));
        Assert.Equal(WeightGradient(5931) with { K = 6144 }, PlanBuckets.Representative(WeightGradient(5931)));
    }

    [Fact]
    public void Row_counts_of_one_bucket_run_the_heuristic_once_for_the_bound()
    {
        var planner = new FakePlanner();
        using var cache = new GemmPlanCache<FakePlan>(planner);
        var plans = new[] { 5648, 5700, 5931, 6000, 6144 }.Select(r => cache.Get(Forward(r))).ToList();
        Assert.Equal([Forward(6144)], planner.HeuristicCalls);
        Assert.All(plans, p => Assert.Equal("best for 6144x2048x2048", p.Algorithm));
        Assert.Equal([5648, 5700, 5931, 6000, 6144], plans.Select(p => p.Shape.M));
        Assert.Equal(new GemmPlanStats(1, 4, 0), cache.Stats);
        // A shape seen before reuses its plan without asking again.
        Assert.Same(plans[0], cache.Get(Forward(5648)));
        Assert.Single(planner.HeuristicCalls);
    }

    [Fact]
    public void A_shape_gets_the_same_algorithm_whatever_was_planned_before_it()
    {
        int[] rows = [5613, 6899, 8487, 7263, 8147, 5931, 6516, 7411];
        string Run(IEnumerable<int> order, int[] ask)
        {
            using var cache = new GemmPlanCache<FakePlan>(new FakePlanner());
            foreach (var r in order) cache.Get(Forward(r));
            return string.Join(",", ask.Select(r => cache.Get(Forward(r)).Algorithm + "|" + cache.Get(WeightGradient(r)).Algorithm));
        }
        Assert.Equal(Run([], rows), Run(rows.Reverse(), rows));
        Assert.Equal(Run([], rows), Run([6100, 6144, 9000, 7000], rows));
    }

    [Fact]
    public void A_refused_algorithm_sends_the_exact_shape_to_the_heuristic()
    {
        // cuBLASLt refuses the bound's algorithm for row counts that are not a multiple of 64 (say).
        var planner = new FakePlanner(accepts: (shape, _) => shape.M % 64 == 0);
        using var cache = new GemmPlanCache<FakePlan>(planner);
        Assert.Equal("best for 6144x2048x2048", cache.Get(Forward(5696)).Algorithm);
        Assert.Equal("best for 5680x2048x2048", cache.Get(Forward(5680)).Algorithm);
        Assert.Equal([Forward(6144), Forward(5680)], planner.HeuristicCalls);
        Assert.Equal(new GemmPlanStats(Fresh: 2, Adopted: 1, Refused: 1), cache.Stats);
    }

    [Fact]
    public void Exact_planning_runs_the_heuristic_for_every_new_shape()
    {
        var planner = new FakePlanner();
        using var cache = new GemmPlanCache<FakePlan>(planner) { Bucketed = false };
        Assert.Equal("best for 5613x2048x2048", cache.Get(Forward(5613)).Algorithm);
        Assert.Equal("best for 2048x16x5700", cache.Get(WeightGradient(5700)).Algorithm);
        Assert.Equal([Forward(5613), WeightGradient(5700)], planner.HeuristicCalls);
        Assert.Equal(new GemmPlanStats(2, 0, 0), cache.Stats);
    }

    [Fact]
    public void A_full_cache_gives_back_the_least_recently_used_plan_and_never_holds_more_than_its_capacity()
    {
        var planner = new FakePlanner();
        using var cache = new GemmPlanCache<FakePlan>(planner, capacity: 3) { Bucketed = false };
        var first = cache.Get(Forward(100));
        cache.Get(Forward(200));
        cache.Get(Forward(300));
        Assert.Same(first, cache.Get(Forward(100))); // used again: now the most recent
        cache.Get(Forward(400));                     // evicts 200, the least recently used
        Assert.Equal(3, cache.Count);
        Assert.Equal([Forward(200)], planner.Released.Select(p => p.Shape));
        Assert.Same(first, cache.Get(Forward(100)));
        Assert.Equal(4, planner.HeuristicCalls.Count);
        cache.Get(Forward(200));                     // planned again, evicting 300
        Assert.Equal([Forward(200), Forward(300)], planner.Released.Select(p => p.Shape));
        Assert.Equal(new GemmPlanStats(Fresh: 5, Adopted: 0, Refused: 0, Evicted: 2), cache.Stats);
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void Eviction_never_changes_which_algorithm_a_shape_runs()
    {
        // A varlen SFT run: many distinct row counts, a small cache that evicts all the time.
        var rows = Enumerable.Range(0, 400).Select(i => 48 + (i * 7919) % 16_000).ToArray();
        string Run(int capacity)
        {
            using var cache = new GemmPlanCache<FakePlan>(new FakePlanner(), capacity);
            var seen = rows.Select(r => cache.Get(Forward(r)).Algorithm + "|" + cache.Get(WeightGradient(r)).Algorithm).ToList();
            Assert.True(cache.Count <= capacity);
            return string.Join(",", seen);
        }
        Assert.Equal(Run(GemmPlanCache<FakePlan>.DefaultCapacity), Run(2));
        Assert.Equal(Run(GemmPlanCache<FakePlan>.DefaultCapacity), Run(17));
    }

    [Fact]
    public void A_cache_needs_room_for_a_bound_and_the_shape_adopting_from_it() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new GemmPlanCache<FakePlan>(new FakePlanner(), capacity: 1));

    [Fact]
    public void Forgetting_gives_every_plan_back_and_plans_again()
    {
        var planner = new FakePlanner();
        var cache = new GemmPlanCache<FakePlan>(planner);
        cache.Get(Forward(5613));
        Assert.Equal(2, cache.Count);
        cache.Clear();
        Assert.Equal(2, planner.Released.Count);
        Assert.Equal(0, cache.Count);
        Assert.Equal(default, cache.Stats);
        cache.Get(Forward(5613));
        Assert.Equal(2, planner.HeuristicCalls.Count);
        cache.Dispose();
        Assert.Equal(4, planner.Released.Count);
    }
}
