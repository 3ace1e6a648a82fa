namespace FineTune.Build.IntegrationTests;

/// <summary>The outcome of one `dotnet` invocation.</summary>
internal sealed record BuildResult(int ExitCode, string Output)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Lines the pipeline logs per step, e.g. "FineTuneTrain: up to date (...)".</summary>
    public IEnumerable<string> StepLines(string step) =>
        Output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith(step + ":", StringComparison.Ordinal) || l.StartsWith(step + "(", StringComparison.Ordinal));

    public bool Ran(string step) => StepLines(step).Any(l => l.Contains(": running", StringComparison.Ordinal));

    public bool UpToDate(string step) => StepLines(step).Any(l => l.Contains(": up to date", StringComparison.Ordinal));

    public override string ToString() => $"exit {ExitCode}\n{Output}";
}
