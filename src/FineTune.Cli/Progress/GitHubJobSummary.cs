using System.Text;
using FineTune.Core.Progress;

namespace FineTune.Cli.Progress;

/// <summary>
/// Appends a training summary to GitHub Actions' job summary file (<c>$GITHUB_STEP_SUMMARY</c>, which
/// GitHub renders as Markdown on the run's page): a loss table over the logging steps and the
/// artifacts with their sizes. Forwards every report to the display it wraps.
/// </summary>
public sealed class GitHubJobSummary(ITrainingProgressReporter inner, string summaryPath, string title, int loggingSteps) : ITrainingProgressReporter
{
    /// <summary>Beyond this many rows the table keeps evenly spaced ones (always the first and last).</summary>
    public const int MaxRows = 40;

    private readonly List<Row> _rows = [];
    private readonly Lock _gate = new();

    private sealed record Row(int Step, int Total, double? Loss, double? LearningRate, double? TokensPerSecond, double? EvalLoss);

    /// <inheritdoc />
    public void Report(TrainingProgress value)
    {
        inner.Report(value);
        if (!PlainProgressWriter.ShouldLog(value, loggingSteps)) return;
        lock (_gate)
        {
            if (value.EvalLoss is { } eval)
            {
                var i = _rows.FindLastIndex(r => r.Step == value.Step);
                if (i >= 0) _rows[i] = _rows[i] with { EvalLoss = eval };
                else _rows.Add(new Row(value.Step, value.TotalSteps, null, null, null, eval));
            }
            else
            {
                _rows.Add(new Row(value.Step, value.TotalSteps, value.Loss, value.LearningRate, value.TokensPerSecond, null));
            }
        }
    }

    /// <inheritdoc />
    public void Complete(IReadOnlyList<string> artifacts)
    {
        inner.Complete(artifacts);
        string markdown;
        lock (_gate) markdown = Render(artifacts);
        // GitHub's contract is to append: other steps of the job write to the same file.
        File.AppendAllText(summaryPath, markdown, new UTF8Encoding(false));
    }

    /// <inheritdoc />
    public void Dispose() => inner.Dispose();

    private string Render(IReadOnlyList<string> artifacts)
    {
        var sb = new StringBuilder();
        sb.Append("### ").Append(Escape(title)).Append("\n\n");
        if (_rows.Count == 0)
        {
            sb.Append("No training steps were run (the adapter came from the cache).\n\n");
        }
        else
        {
            sb.Append("| step | loss | eval loss | learning rate | tokens/s |\n| ---: | ---: | ---: | ---: | ---: |\n");
            foreach (var r in Thin(_rows))
            {
                sb.Append($"| {r.Step}/{r.Total} | {Cell(r.Loss, ProgressFormat.Loss)} | {Cell(r.EvalLoss, ProgressFormat.Loss)} | ")
                  .Append($"{Cell(r.LearningRate, ProgressFormat.LearningRate)} | {Cell(r.TokensPerSecond, ProgressFormat.Rate)} |\n");
            }
            sb.Append('\n');
        }
        if (artifacts.Count > 0)
        {
            sb.Append("| artifact | size |\n| --- | ---: |\n");
            foreach (var a in artifacts)
            {
                var size = File.Exists(a) ? ProgressFormat.Bytes(FineTune.Core.IO.FileLinks.Length(a)) : "";
                sb.Append($"| `{Path.GetFileName(a).Replace("`", "'")}` | {size} |\n");
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static IEnumerable<Row> Thin(List<Row> rows)
    {
        if (rows.Count <= MaxRows) return rows;
        return Enumerable.Range(0, MaxRows).Select(i => (int)Math.Round(i * (rows.Count - 1) / (double)(MaxRows - 1))).Distinct().Select(i => rows[i]);
    }

    private static string Cell(double? value, Func<double, string> format) => value is { } v ? format(v) : "";

    // Markdown table and heading text: neutralise the characters that would change the structure.
    private static string Escape(string text) => text.Replace("|", "\\|").Replace("\n", " ").Replace("\r", " ");
}
