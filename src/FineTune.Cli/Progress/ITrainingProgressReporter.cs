using FineTune.Core.Progress;

namespace FineTune.Cli.Progress;

/// <summary>
/// Receives the trainer's progress and shows it. Dispose it when training stops for any reason;
/// call <see cref="Complete"/> first when training finished and its outputs are written.
/// </summary>
public interface ITrainingProgressReporter : IProgress<TrainingProgress>, IDisposable
{
    /// <summary>Training finished: ends the display and records the artifacts (job summary on GitHub Actions).</summary>
    void Complete(IReadOnlyList<string> artifacts);
}
