namespace FineTune.Data.Jinja;

/// <summary>
/// Bounds on one rendering. Chat templates come from downloaded repositories, so a hostile or
/// broken one must fail fast (FT1043) instead of hanging the build or exhausting memory. The
/// defaults are far above what any real chat template needs for a training example.
/// </summary>
public sealed record SandboxLimits
{
    /// <summary>Loop iterations (all loops of one rendering together) plus <c>range</c> lengths.</summary>
    public int MaxIterations { get; init; } = 1_000_000;

    /// <summary>Nested macro calls.</summary>
    public int MaxCallDepth { get; init; } = 64;

    /// <summary>Characters of the output and of any string or list built along the way.</summary>
    public int MaxOutputChars { get; init; } = 16 * 1024 * 1024;

    /// <summary>Wall-clock time for one rendering.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The defaults.</summary>
    public static SandboxLimits Default { get; } = new();
}
