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
/// </summary>
internal sealed class GemmPlanCache<TPlan>(IGemmPlanner<TPlan> planner) : IDisposable where TPlan : class
{
    private readonly Dictionary<GemmShape, TPlan> _plans = [];

    /// <summary>Whether shapes share their bucket's algorithm (false: cuBLASLt's heuristic for every exact shape).</summary>
    public bool Bucketed { get; set; } = true;

    /// <summary>Plans made so far: by the heuristic, adopted from a bucket's bound, and adoptions cuBLASLt refused (planned fresh instead).</summary>
    public GemmPlanStats Stats { get; private set; }

    /// <summary>Plans held.</summary>
    public int Count => _plans.Count;

    /// <summary>The plan for <paramref name="shape"/>, made on first sight.</summary>
    public TPlan Get(GemmShape shape)
    {
        if (_plans.TryGetValue(shape, out var plan))
            return plan;
        plan = Make(shape);
        _plans[shape] = plan;
        return plan;
    }

    private TPlan Make(GemmShape shape)
    {
        var bound = PlanBuckets.Representative(shape);
        if (!Bucketed || bound == shape)
            return Fresh(shape);
        // The bound's own plan (kept: a batch with exactly that many rows uses it as is).
        if (planner.Adopt(shape, Get(bound)) is { } adopted)
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
        return planner.Fresh(shape);
    }

    /// <summary>Gives every plan back and starts over (a benchmark's runs each from no plans).</summary>
    public void Clear()
    {
        foreach (var plan in _plans.Values)
            planner.Release(plan);
        _plans.Clear();
        Stats = default;
    }

    /// <inheritdoc />
    public void Dispose() => Clear();
}

/// <summary>Plans made: <paramref name="Fresh"/> by cuBLASLt's heuristic, <paramref name="Adopted"/> from their bucket's bound, <paramref name="Refused"/> adoptions cuBLASLt did not accept (each also counted in Fresh).</summary>
public readonly record struct GemmPlanStats(int Fresh, int Adopted, int Refused);
