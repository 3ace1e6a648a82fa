namespace FineTune.Engine.Backends.Cuda.Blas;

/// <summary>How a plan for a product shape is made: cuBLASLt's side of <see cref="GemmPlanCache{TPlan}"/>.</summary>
internal interface IGemmPlanner<TPlan>
{
    /// <summary>A plan for <paramref name="shape"/> with the algorithm cuBLASLt's heuristic picks for it.</summary>
    TPlan Fresh(GemmShape shape);

    /// <summary>
    /// A plan for <paramref name="shape"/> with <paramref name="model"/>'s algorithm, or null when
    /// cuBLASLt does not accept that algorithm for this shape (<c>cublasLtMatmulAlgoCheck</c>).
    /// </summary>
    TPlan? Adopt(GemmShape shape, TPlan model);

    /// <summary>Gives a plan's descriptors back.</summary>
    void Release(TPlan plan);
}

/// <summary>
/// One plan per exact product shape, made the first time the shape is seen. With
/// <see cref="Bucketed"/> (the default) a shape off its bucket's bound takes the algorithm chosen
/// for the bound (<see cref="PlanBuckets"/>) once cuBLASLt accepts it for the exact shape, and a
/// fresh heuristic plan when it does not; either way the algorithm depends on the shape alone.
/// At most <see cref="Capacity"/> plans are held: the least recently used one is given back first.
/// Variable-length batches make a new exact shape per distinct token count, so a long SFT run would
/// otherwise keep hundreds of thousands of descriptors; a plan made again after eviction picks the
/// same algorithm (it depends on the shape alone), so eviction never changes the bytes.
/// </summary>
internal sealed class GemmPlanCache<TPlan> : IDisposable where TPlan : class
{
    /// <summary>Plans held by default: a 1B model's ~20 product shapes for a few hundred distinct token counts.</summary>
    public const int DefaultCapacity = 8192;

    private readonly IGemmPlanner<TPlan> _planner;
    private readonly Dictionary<GemmShape, LinkedListNode<(GemmShape Shape, TPlan Plan)>> _plans = [];
    private readonly LinkedList<(GemmShape Shape, TPlan Plan)> _recency = []; // most recently used first

    /// <summary>A cache that makes plans with <paramref name="planner"/> and holds at most <paramref name="capacity"/> (at least 2: a bucket's bound and the shape adopting from it).</summary>
    public GemmPlanCache(IGemmPlanner<TPlan> planner, int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        _planner = planner;
        Capacity = capacity;
    }

    /// <summary>The most plans held at once.</summary>
    public int Capacity { get; }

    /// <summary>Whether shapes share their bucket's algorithm (false: cuBLASLt's heuristic for every exact shape).</summary>
    public bool Bucketed { get; set; } = true;

    /// <summary>Plans made so far: by the heuristic, adopted from a bucket's bound, and adoptions cuBLASLt refused (planned fresh instead).</summary>
    public GemmPlanStats Stats { get; private set; }

    /// <summary>Plans held.</summary>
    public int Count => _plans.Count;

    /// <summary>The plan for <paramref name="shape"/>, made on first sight (or again after it was evicted).</summary>
    public TPlan Get(GemmShape shape)
    {
        if (_plans.TryGetValue(shape, out var node))
        {
            _recency.Remove(node);
            _recency.AddFirst(node);
            return node.Value.Plan;
        }
        var plan = Make(shape);
        _plans[shape] = _recency.AddFirst((shape, plan));
        while (_plans.Count > Capacity)
        {
            var oldest = _recency.Last!;
            _recency.RemoveLast();
            _plans.Remove(oldest.Value.Shape);
            _planner.Release(oldest.Value.Plan);
            Stats = Stats with { Evicted = Stats.Evicted + 1 };
        }
        return plan;
    }

    private TPlan Make(GemmShape shape)
    {
        var bound = PlanBuckets.Representative(shape);
        if (!Bucketed || bound == shape)
            return Fresh(shape);
        // The bound's own plan (kept: a batch with exactly that many rows uses it as is).
        if (_planner.Adopt(shape, Get(bound)) is { } adopted)
        {
            Stats = Stats with { Adopted = Stats.Adopted + 1 };
            return adopted;
        }
        Stats = Stats with { Refused = Stats.Refused + 1 };
        return Fresh(shape);
    }

    private TPlan Fresh(GemmShape shape)
    {
        Stats = Stats with { Fresh = Stats.Fresh + 1 };
        return _planner.Fresh(shape);
    }

    /// <summary>Gives every plan back and starts over (a benchmark's runs each from no plans).</summary>
    public void Clear()
    {
        foreach (var (_, plan) in _recency)
            _planner.Release(plan);
        _plans.Clear();
        _recency.Clear();
        Stats = default;
    }

    /// <inheritdoc />
    public void Dispose() => Clear();
}

/// <summary>Plans made: <paramref name="Fresh"/> by cuBLASLt's heuristic, <paramref name="Adopted"/> from their bucket's bound, <paramref name="Refused"/> adoptions cuBLASLt did not accept (each also counted in Fresh); <paramref name="Evicted"/> given back to stay within the capacity.</summary>
public readonly record struct GemmPlanStats(int Fresh, int Adopted, int Refused, int Evicted = 0);
