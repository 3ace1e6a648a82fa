using System.Text;
using FineTune.Core.Progress;

namespace FineTune.Cli.Progress;

/// <summary>
/// One line per logging step (and per evaluation), for MSBuild, CI logs and pipes, e.g.
/// <c>step 5/60 loss 2.3145 lr 2.00e-04 grad_norm 1.532 tok/s 812 elapsed 00:12 eta 02:12 mem 1.2 GiB</c>.
/// Plain <c>key value</c> pairs so logs can be grepped and parsed.
/// </summary>
public sealed class PlainProgressWriter(TextWriter output, int loggingSteps) : ITrainingProgressReporter
{
    private readonly int _loggingSteps = Math.Max(1, loggingSteps);

    /// <inheritdoc />
    public void Report(TrainingProgress value)
    {
        if (!ShouldLog(value, _loggingSteps)) return;
        output.WriteLine(Format(value));
        output.Flush();
    }

    /// <summary>A report is shown when it is an evaluation, a logging step or the last step.</summary>
    public static bool ShouldLog(TrainingProgress p, int loggingSteps) =>
        p.EvalLoss is not null || p.Step % Math.Max(1, loggingSteps) == 0 || p.Step == p.TotalSteps;

    /// <summary>The line for one report.</summary>
    public static string Format(TrainingProgress p)
    {
        var sb = new StringBuilder();
        if (p.EvalLoss is { } eval)
            return AppendMetrics(sb.Append($"eval step {p.Step}/{p.TotalSteps} eval_loss {ProgressFormat.Loss(eval)}"), p).ToString();
        sb.Append($"step {p.Step}/{p.TotalSteps} loss {ProgressFormat.Loss(p.Loss)} lr {ProgressFormat.LearningRate(p.LearningRate)}");
        sb.Append($" grad_norm {ProgressFormat.Number(p.GradNorm, "0.000")} tok/s {ProgressFormat.Rate(p.TokensPerSecond)}");
        sb.Append($" elapsed {ProgressFormat.Duration(p.Elapsed)} eta {ProgressFormat.Duration(p.Eta)}");
        if (p.PeakMemoryBytes is { } mem) sb.Append($" mem {ProgressFormat.Bytes(mem)}");
        return AppendMetrics(sb, p).ToString();
    }

    /// <summary>Preference training's metrics under TRL's names (<c>rewards/accuracies 0.75</c>), in name order.</summary>
    private static StringBuilder AppendMetrics(StringBuilder sb, TrainingProgress p)
    {
        foreach (var (key, value) in p.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal))
            sb.Append(' ').Append(key).Append(' ').Append(value.ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
        return sb;
    }

    /// <inheritdoc />
    public void Complete(IReadOnlyList<string> artifacts) { }

    /// <inheritdoc />
    public void Dispose() { }
}
