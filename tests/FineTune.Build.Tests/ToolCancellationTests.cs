namespace FineTune.Build.Tests;

/// <summary>
/// What a user sees when a build is cancelled while a finetune step runs: the tool's last lines
/// ("Stopped at step ...") and exactly one FT6013 saying what the next build does — also when MSBuild
/// is slow to log the tool's output, which is when ToolTask's own cancellation used to win the race
/// with the tool's exit and the build ended with no error at all (a CI run saw it).
/// </summary>
public sealed class ToolCancellationTests
{
    [Fact]
    public async Task A_cancelled_step_that_stops_in_time_logs_its_last_lines_and_one_FT6013()
    {
        if (!OperatingSystem.IsLinux()) return; // the graceful stop signals children through /proc
        using var dir = new TempDir();
        // Stands in for the finetune CLI: on SIGTERM it checkpoints and exits 130, as the CLI does.
        var cli = Path.Combine(dir.Path, "finetune-stand-in.sh");
        File.WriteAllText(cli, """
            trap 'echo "Checkpoint saved at step 3/12"; echo "Stopped at step 3/12"; exit 130' TERM
            echo "training started"
            while true; do sleep 0.05; done
            """);
        var engine = new RecordingEngine(slowLine: "Checkpoint saved", delay: TimeSpan.FromMilliseconds(700));
        var task = new ShellStep { BuildEngine = engine, CliPath = cli, CliArguments = [], StepName = "FineTuneTrain", ProjectPath = "model.ftproj" };

        var run = Task.Run(task.Execute);
        Assert.True(engine.WaitForMessage("training started", TimeSpan.FromSeconds(20)), string.Join('\n', engine.Messages));
        task.Cancel();
        Assert.True(await EndsWithin(run, TimeSpan.FromSeconds(30)), "the step did not end after Cancel");

        Assert.False(await run);
        Assert.Contains(engine.Messages, m => m.Contains("Stopped at step 3/12", StringComparison.Ordinal));
        var error = Assert.Single(engine.Errors);
        Assert.Equal("FT6013", error.Code);
        Assert.Equal("model.ftproj", error.File);
        Assert.Equal("FineTuneTrain was cancelled. The next build runs it again.", error.Message);
    }

    [Fact]
    public async Task Cancelling_a_step_leaves_another_steps_tool_of_the_same_name_running()
    {
        if (!OperatingSystem.IsLinux()) return;
        // Two tools named alike in two folders, children of one process (tests in parallel; an MSBuild
        // node that yields): matching the file name alone stopped both, and the other step failed.
        using var mine = new TempDir();
        using var other = new TempDir();
        var script = "echo started\nwhile true; do sleep 0.05; done\n";
        var myCli = Path.Combine(mine.Path, "finetune-stand-in.sh");
        var otherCli = Path.Combine(other.Path, "finetune-stand-in.sh");
        File.WriteAllText(myCli, script);
        File.WriteAllText(otherCli, script);
        var myEngine = new RecordingEngine(slowLine: null, delay: TimeSpan.Zero);
        var otherEngine = new RecordingEngine(slowLine: null, delay: TimeSpan.Zero);
        var myStep = new ShellStep { BuildEngine = myEngine, CliPath = myCli, CliArguments = [], StepName = "FineTuneTokenize" };
        var otherStep = new ShellStep { BuildEngine = otherEngine, CliPath = otherCli, CliArguments = [], StepName = "FineTuneExport" };
        var myRun = Task.Run(myStep.Execute);
        var otherRun = Task.Run(otherStep.Execute);
        try
        {
            Assert.True(myEngine.WaitForMessage("started", TimeSpan.FromSeconds(20)));
            Assert.True(otherEngine.WaitForMessage("started", TimeSpan.FromSeconds(20)));

            myStep.Cancel();
            Assert.True(await EndsWithin(myRun, TimeSpan.FromSeconds(30)), "the cancelled step did not end");
            Assert.False(await EndsWithin(otherRun, TimeSpan.FromMilliseconds(500)), "the other step's tool was stopped too");
            Assert.Empty(otherEngine.Errors);
        }
        finally
        {
            otherStep.Cancel();
            await EndsWithin(otherRun, TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public void A_step_cancelled_before_its_tool_runs_still_says_it_was_cancelled()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var dir = new TempDir();
        var cli = Path.Combine(dir.Path, "finetune-stand-in.sh");
        File.WriteAllText(cli, "while true; do sleep 0.05; done\n");
        var engine = new RecordingEngine(slowLine: null, delay: TimeSpan.Zero);
        var task = new ShellStep { BuildEngine = engine, CliPath = cli, CliArguments = [], StepName = "FineTuneTokenize", ProjectPath = "model.ftproj" };

        task.Cancel(); // no child yet: ToolTask ends the tool as soon as it starts
        Assert.False(task.Execute());

        var error = Assert.Single(engine.Errors);
        Assert.Equal("FT6013", error.Code);
        Assert.StartsWith("FineTuneTokenize was cancelled (", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("The next build runs it again.", error.Message, StringComparison.Ordinal);
    }

    private static async Task<bool> EndsWithin(Task task, TimeSpan timeout) => await Task.WhenAny(task, Task.Delay(timeout)) == task;
}
