using Spectre.Console;

namespace FineTune.Cli.Progress;

/// <summary>Picks the progress display for where the tool runs (see <see cref="ProgressEnvironment"/>).</summary>
public static class TrainingProgressReporter
{
    /// <summary>
    /// A live display for a terminal, otherwise one plain line per logging step on standard output;
    /// under GitHub Actions wrapped so that <see cref="ITrainingProgressReporter.Complete"/> also writes
    /// the job summary.
    /// </summary>
    /// <param name="title">What is being trained, e.g. the model name.</param>
    /// <param name="loggingSteps">lora.yaml's <c>logging_steps</c>: plain lines and summary rows every N steps.</param>
    /// <param name="environment">Defaults to <see cref="ProgressEnvironment.FromProcess"/>.</param>
    public static ITrainingProgressReporter Create(string title, int loggingSteps, ProgressEnvironment? environment = null)
    {
        var env = environment ?? ProgressEnvironment.FromProcess();
        ITrainingProgressReporter display = env.Interactive
            ? new LiveProgressDisplay(AnsiConsole.Console, title, TimeSpan.FromMilliseconds(150))
            : new PlainProgressWriter(Console.Out, loggingSteps);
        return env.GitHubStepSummaryPath is { } path ? new GitHubJobSummary(display, path, title, loggingSteps) : display;
    }
}
