using FineTune.Cli.Progress;
using FineTune.Core.Progress;
using Spectre.Console;

namespace FineTune.Cli.Tests.Progress;

public class ProgressTests
{
    private static TrainingProgress Step(int step, int total = 60, double loss = 2.31456, double? eval = null) => new()
    {
        Step = step,
        TotalSteps = total,
        Loss = loss,
        LearningRate = 0.0002,
        GradNorm = 1.5321,
        Tokens = 4096L * step,
        TokensPerSecond = 812.4,
        Elapsed = TimeSpan.FromSeconds(2 * step),
        PeakMemoryBytes = 1288490189, // 1.2 GiB
        EvalLoss = eval,
    };

    [Theory]
    [InlineData(null, null, false, true)]
    [InlineData(null, null, true, false)]     // MSBuild's ToolTask and pipes redirect stdout
    [InlineData("true", null, false, false)]  // CI
    [InlineData("false", null, false, true)]
    [InlineData(null, "true", false, false)]  // GITHUB_ACTIONS
    public void Interactive_only_at_a_terminal_outside_ci(string? ci, string? githubActions, bool redirected, bool interactive)
    {
        var env = new Dictionary<string, string?> { ["CI"] = ci, ["GITHUB_ACTIONS"] = githubActions, ["TERM"] = "xterm-256color" };
        Assert.Equal(interactive, ProgressEnvironment.Detect(k => env.GetValueOrDefault(k), redirected).Interactive);
    }

    [Fact]
    public void Dumb_terminal_gets_plain_lines_and_step_summary_path_is_picked_up()
    {
        var env = new Dictionary<string, string?> { ["TERM"] = "dumb", ["GITHUB_STEP_SUMMARY"] = "/tmp/summary.md" };
        var detected = ProgressEnvironment.Detect(k => env.GetValueOrDefault(k), outputRedirected: false);
        Assert.False(detected.Interactive);
        Assert.Equal("/tmp/summary.md", detected.GitHubStepSummaryPath);
    }

    [Fact]
    public void Plain_line_has_every_number()
    {
        // step 5 of 60 after 10 s: 2 s per step, 55 steps left = 110 s.
        Assert.Equal("step 5/60 loss 2.3146 lr 2.00e-04 grad_norm 1.532 tok/s 812 elapsed 00:10 eta 01:50 mem 1.2 GiB",
            PlainProgressWriter.Format(Step(5)));
        Assert.Equal("eval step 15/60 eval_loss 1.2500", PlainProgressWriter.Format(Step(15, eval: 1.25)));
    }

    [Fact]
    public void Plain_writer_prints_one_line_per_logging_step_plus_evaluations_and_the_last_step()
    {
        var output = new StringWriter();
        using (var writer = new PlainProgressWriter(output, loggingSteps: 5))
        {
            for (var s = 1; s <= 12; s++) writer.Report(Step(s, total: 12));
            writer.Report(Step(12, total: 12, eval: 1.5));
            writer.Complete([]);
        }
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["step 5/12", "step 10/12", "step 12/12", "eval step 12/12"], lines.Select(l => string.Join(' ', l.Split(' ').Take(l.StartsWith("eval") ? 3 : 2))));
    }

    [Fact]
    public void Job_summary_appends_a_loss_table_and_the_artifacts()
    {
        using var dir = new TempDir();
        var summary = dir.File("summary.md");
        File.WriteAllText(summary, "earlier step's summary\n");
        var gguf = dir.File("m-1.0.0.Q8_0.gguf");
        File.WriteAllBytes(gguf, new byte[2048]);

        var inner = new StringWriter();
        using (var reporter = new GitHubJobSummary(new PlainProgressWriter(inner, 2), summary, "tweet|caps", loggingSteps: 2))
        {
            for (var s = 1; s <= 4; s++) reporter.Report(Step(s, total: 4, loss: 3.0 - s * 0.5));
            reporter.Report(Step(4, total: 4, eval: 0.75));
            reporter.Complete([gguf]);
        }
        var text = File.ReadAllText(summary);
        Assert.StartsWith("earlier step's summary\n### tweet\\|caps\n", text);
        Assert.Contains("| 2/4 | 2.0000 |  | 2.00e-04 | 812 |\n", text);
        Assert.Contains("| 4/4 | 1.0000 | 0.7500 | 2.00e-04 | 812 |\n", text);
        Assert.DoesNotContain("| 1/4 |", text);
        Assert.Contains("| `m-1.0.0.Q8_0.gguf` | 2.0 KiB |", text);
        // The display it wraps still got its lines.
        Assert.Contains("step 4/4", inner.ToString());
    }

    [Fact]
    public void Job_summary_keeps_at_most_MaxRows_rows_including_first_and_last()
    {
        using var dir = new TempDir();
        var summary = dir.File("summary.md");
        using (var reporter = new GitHubJobSummary(new PlainProgressWriter(TextWriter.Null, 1), summary, "m", 1))
        {
            for (var s = 1; s <= 500; s++) reporter.Report(Step(s, total: 500));
            reporter.Complete([]);
        }
        var rows = File.ReadAllLines(summary).Where(l => l.StartsWith("| ") && l.Contains("/500 ")).ToList();
        Assert.Equal(GitHubJobSummary.MaxRows, rows.Count);
        Assert.StartsWith("| 1/500 ", rows[0]);
        Assert.StartsWith("| 500/500 ", rows[^1]);
    }

    [Fact]
    public void Live_display_draws_step_loss_rate_eta_and_memory()
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.TrueColor,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(output),
        });
        using (var display = new LiveProgressDisplay(console, "tweet-caps", TimeSpan.FromMilliseconds(10)))
        {
            display.Report(Step(30));
            display.Report(Step(30, eval: 1.125));
            display.Complete([]);
        }
        var text = output.ToString();
        Assert.Contains("tweet-caps", text);
        Assert.Contains("30", text);
        Assert.Contains("/60", text);
        Assert.Contains("2.3146", text);
        Assert.Contains("1.1250", text);
        Assert.Contains("2.00e-04", text);
        Assert.Contains("812 tok/s", text);
        Assert.Contains("01:00", text); // ETA: 30 steps left at 2 s each
        Assert.Contains("1.2 GiB", text);
        Assert.Contains("\u001b[", text); // drawn with ANSI escapes, not plain lines
    }
}
