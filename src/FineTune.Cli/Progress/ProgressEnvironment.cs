namespace FineTune.Cli.Progress;

/// <summary>
/// Where progress goes: a person at a terminal gets a live display; MSBuild (which redirects the
/// tool's output), CI and pipes get plain lines; GitHub Actions also gets a job summary.
/// </summary>
/// <param name="Interactive">Standard output is a terminal and no CI is detected.</param>
/// <param name="GitHubStepSummaryPath">The file GitHub Actions renders as the job summary, when set.</param>
public sealed record ProgressEnvironment(bool Interactive, string? GitHubStepSummaryPath)
{
    /// <summary>Reads the process's console and environment variables.</summary>
    public static ProgressEnvironment FromProcess() => Detect(
        Environment.GetEnvironmentVariable,
        Console.IsOutputRedirected);

    /// <summary>Decides from environment variables and whether standard output is redirected.</summary>
    public static ProgressEnvironment Detect(Func<string, string?> getEnv, bool outputRedirected)
    {
        // CI=true is set by GitHub Actions, GitLab, Azure Pipelines, CircleCI, Travis and Buildkite; a
        // dumb terminal cannot redraw lines in place.
        var ci = IsSet(getEnv("CI")) || IsSet(getEnv("TF_BUILD")) || IsSet(getEnv("GITHUB_ACTIONS"));
        var dumb = string.Equals(getEnv("TERM"), "dumb", StringComparison.Ordinal);
        var summary = getEnv("GITHUB_STEP_SUMMARY");
        return new ProgressEnvironment(!outputRedirected && !ci && !dumb, string.IsNullOrWhiteSpace(summary) ? null : summary);
    }

    private static bool IsSet(string? value) =>
        !string.IsNullOrEmpty(value) && !string.Equals(value, "false", StringComparison.OrdinalIgnoreCase) && value != "0";
}
