namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>One output of a checked kernel: its relative error against the float64 reference and the bound it must meet.</summary>
public sealed record OutputError(string Output, double RelativeError, double Tolerance)
{
    /// <summary>Within tolerance (NaN never is).</summary>
    public bool Passed => RelativeError <= Tolerance;
}

/// <summary>The outcome of one kernel check: accuracy of each output, and whether two runs gave identical bytes.</summary>
public sealed record KernelCheckResult(string Name, int Seed, IReadOnlyList<OutputError> Errors, bool Deterministic, string? Failure = null)
{
    /// <summary>All outputs within tolerance, bit-identical across runs, and no exception.</summary>
    public bool Passed => Failure is null && Deterministic && Errors.Count > 0 && Errors.All(e => e.Passed);

    /// <summary>The worst relative error over the outputs.</summary>
    public double MaxRelativeError => Errors.Count == 0 ? double.NaN : Errors.Max(e => double.IsNaN(e.RelativeError) ? double.PositiveInfinity : e.RelativeError);

    /// <summary>A one-line summary for test failures and logs.</summary>
    public override string ToString() =>
        $"{Name} (seed {Seed}): {(Passed ? "ok" : "FAILED")}, deterministic={Deterministic}, " +
        string.Join(", ", Errors.Select(e => $"{e.Output} rel.err {e.RelativeError:0.###e+0} (tol {e.Tolerance:0.#e+0})")) +
        (Failure is null ? "" : $"; {Failure}");
}
