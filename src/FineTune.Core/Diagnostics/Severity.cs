namespace FineTune.Core.Diagnostics;

/// <summary>How MSBuild should treat a diagnostic line.</summary>
public enum Severity
{
    /// <summary>Fails the build.</summary>
    Error,
    /// <summary>Shown, does not fail the build.</summary>
    Warning,
}
