namespace FineTune.Build.Tests;

/// <summary>
/// The JIT setting each step's tool runs with: short steps compile their loops optimized at once
/// (they are over before tiered compilation would), training keeps the runtime's default, and a
/// setting the user made in their environment is never overridden.
/// </summary>
public sealed class ToolEnvironmentTests
{
    [Theory]
    [InlineData(false, "0")]
    [InlineData(true, "default")]
    public void Short_steps_compile_loops_at_once_and_training_keeps_the_tiered_default(bool longRunning, string expected)
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Null(Environment.GetEnvironmentVariable("DOTNET_TC_QuickJitForLoops")); // the test process's own environment is the user's
        Assert.Equal($"quick-jit-for-loops={expected} plain-progress=1", RunPrintingEnvironment(longRunning));
    }

    [Fact]
    public void A_JIT_setting_in_the_users_environment_wins()
    {
        if (!OperatingSystem.IsLinux()) return;
        Environment.SetEnvironmentVariable("DOTNET_TieredCompilation", "0");
        try
        {
            Assert.Equal("quick-jit-for-loops=default plain-progress=1", RunPrintingEnvironment(longRunning: false));
        }
        finally
        {
            Environment.SetEnvironmentVariable("DOTNET_TieredCompilation", null);
        }
    }

    private static string RunPrintingEnvironment(bool longRunning)
    {
        using var dir = new TempDir();
        var cli = Path.Combine(dir.Path, "finetune-stand-in.sh");
        File.WriteAllText(cli, "echo \"quick-jit-for-loops=${DOTNET_TC_QuickJitForLoops:-default} plain-progress=$FINETUNE_PLAIN_PROGRESS\"\n");
        var engine = new RecordingEngine(slowLine: null, delay: TimeSpan.Zero);
        var task = new ShellStep { BuildEngine = engine, CliPath = cli, CliArguments = [], StepName = "FineTuneExport", LongRunning = longRunning };
        Assert.True(task.Execute(), string.Join('\n', engine.Errors.Select(e => e.Message)));
        return Assert.Single(engine.Messages, m => m.StartsWith("quick-jit-for-loops=", StringComparison.Ordinal));
    }
}
