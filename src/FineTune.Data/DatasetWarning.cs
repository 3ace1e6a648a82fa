using FineTune.Core.Diagnostics;

namespace FineTune.Data;

/// <summary>A dataset lint finding, reported as an MSBuild warning.</summary>
public sealed record DatasetWarning(string Code, string Message, string? File, int Line)
{
    /// <summary>The warning in MSBuild's canonical form.</summary>
    public override string ToString() => CanonicalMessage.Format(Severity.Warning, Code, Message, File, Line);
}
