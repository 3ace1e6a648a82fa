using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace FineTune.Build.Tasks;

/// <summary>
/// Starts the <c>finetune</c> CLI out of process (so MSBuild node reuse never holds training memory
/// or native libraries) and turns its output into build events: lines in MSBuild's canonical
/// format (<c>file(line,col): error FTnnnn: ...</c>) become errors and warnings with codes, other
/// lines become messages.
/// </summary>
public abstract class FineTuneToolTask : ToolTask
{
    /// <summary>Path of <c>finetune.dll</c>.</summary>
    [Required] public string CliPath { get; set; } = "";

    /// <summary>CLI arguments, one per item; placeholders (e.g. <c>{out}</c>) are substituted by the derived task.</summary>
    [Required] public string[] CliArguments { get; set; } = [];

    /// <summary>Name used in log lines.</summary>
    [Required] public string StepName { get; set; } = "";

    /// <summary>Placeholder -> value substitutions applied to every argument.</summary>
    protected Dictionary<string, string> Placeholders { get; } = new(StringComparer.Ordinal);

    /// <summary>The model project (for error locations); defaults to the file holding the task call.</summary>
    public string ProjectPath { get; set; } = "";

    /// <summary>
    /// True for a step that computes for minutes (training): it keeps the runtime's default tiered JIT,
    /// whose profile-guided code for loops is faster once warm. Other steps last seconds and get
    /// their loops compiled optimized at once.
    /// </summary>
    public bool LongRunning { get; set; }

    /// <summary>The project being built, for error locations.</summary>
    protected string ProjectFile => string.IsNullOrEmpty(ProjectPath) ? BuildEngine?.ProjectFileOfTaskNode ?? "" : ProjectPath;

    /// <inheritdoc />
    protected override string ToolName => "dotnet";

    /// <summary>Runs the CLI; true when it exited 0 and reported no error.</summary>
    protected bool RunTool()
    {
        if (!File.Exists(CliPath))
        {
            Log.LogError(null, "FT6014", null, ProjectFile, 0, 0, 0, 0, $"The finetune tool was not found at '{CliPath}'. Restore the FineTune.Build package again, or set FineTuneCliPath.");
            return false;
        }
        // Progress goes to MSBuild as plain lines, never as a live terminal display.
        List<string> environment = [.. EnvironmentVariables ?? [], "FINETUNE_PLAIN_PROGRESS=1"];
        // A step of a few seconds otherwise runs its loops (loading a tokenizer, writing a GGUF, a forward
        // pass) as unoptimized quick-JIT code for most of its life: the example's steps took 22 CPU s that
        // way and 14 without. Training keeps the default: loops compiled at once get no profile-guided
        // optimization, which cost SmolLM2-shape CPU training ~9%. A setting of the user's own wins.
        if (!LongRunning && !JitConfiguredByUser()) environment.Add("DOTNET_TC_QuickJitForLoops=0");
        EnvironmentVariables = [.. environment];
        var succeeded = base.Execute() && !Log.HasLoggedErrors;
        // ToolTask returns false without a word when its cancellation wins the race with the tool's exit.
        if (!succeeded && CancelRequested && !Log.HasLoggedErrors) LogCancelled(stoppedInTime: false);
        return succeeded;
    }

    private static bool JitConfiguredByUser() =>
        Environment.GetEnvironmentVariable("DOTNET_TC_QuickJitForLoops") is not null
        || Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") is not null;

    /// <inheritdoc />
    protected override string GenerateFullPathToTool()
    {
        // MSBuild tells tasks which dotnet host runs it; fall back to PATH.
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
    }

    /// <inheritdoc />
    protected override string GenerateCommandLineCommands()
    {
        var parts = new List<string> { CommandLineQuoting.Quote(CliPath) };
        foreach (var arg in CliArguments)
        {
            var value = arg;
            foreach (var (key, replacement) in Placeholders) value = value.Replace(key, replacement);
            parts.Add(CommandLineQuoting.Quote(value));
        }
        return string.Join(" ", parts);
    }

    /// <inheritdoc />
    public override void Cancel()
    {
        _cancelRequested = true;
        // Let training checkpoint first; the CLI exits with 130 after its current step. Once it has
        // exited, ToolTask's own cancellation must not run: it would win the race with the exit
        // notification and drop the tool's last lines and exit code ("Stopped at step ...", FT6013).
        if (GracefulCancellation.StopChildren(CliPath, StopTimeout)) return;
        base.Cancel();
    }

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);
    private volatile bool _cancelRequested;

    /// <summary>True once MSBuild has asked the step to stop (a derived task stops waiting for anything else).</summary>
    protected bool CancelRequested => _cancelRequested;

    private string NextBuild => CliArguments.Any(a => a.Contains("{checkpoint}", StringComparison.Ordinal))
        ? "The next build resumes training from its last checkpoint."
        : "The next build runs it again.";

    private void LogCancelled(bool stoppedInTime)
    {
        var how = stoppedInTime ? "" : $" (it had not stopped {StopTimeout.TotalSeconds:F0} s after being asked, or had not started, and was ended)";
        Log.LogError(null, "FT6013", null, ProjectFile, 0, 0, 0, 0, $"{StepName} was cancelled{how}. {NextBuild}");
    }

    /// <inheritdoc />
    protected override MessageImportance StandardOutputLoggingImportance => MessageImportance.High;

    /// <inheritdoc />
    protected override MessageImportance StandardErrorLoggingImportance => MessageImportance.High;

    /// <inheritdoc />
    protected override bool HandleTaskExecutionErrors()
    {
        // The CLI already printed a canonical FTnnnn error; a second generic "exited with code 1" adds nothing.
        if (Log.HasLoggedErrors) return false;
        // Only training keeps partial work (its checkpoint); any other step simply runs again.
        var next = NextBuild;
        if (ExitCode == 130)
        {
            LogCancelled(stoppedInTime: true);
            return false;
        }
        // A process ended by a signal reports 128 + the signal's number (kill -9 -> 137).
        if (ExitCode is > 128 and <= 128 + 64)
        {
            Log.LogError(null, "FT6021", null, ProjectFile, 0, 0, 0, 0, $"{StepName}: the finetune tool was killed by {SignalName(ExitCode - 128)} (exit code {ExitCode}){SignalCause(ExitCode - 128)}. {next}");
            return false;
        }
        Log.LogError(null, "FT9001", null, ProjectFile, 0, 0, 0, 0, $"{StepName}: the finetune tool failed with exit code {ExitCode} without reporting an error. Re-run with -v:d to see its output, and please report it.");
        return false;
    }

    private static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP (signal 1)",
        3 => "SIGQUIT (signal 3)",
        6 => "SIGABRT (signal 6)",
        9 => "SIGKILL (signal 9)",
        11 => "SIGSEGV (signal 11)",
        15 => "SIGTERM (signal 15)",
        _ => $"signal {signal}",
    };

    private static string SignalCause(int signal) => signal switch
    {
        9 => ": something outside the build stopped it, often the kernel's out-of-memory killer (see `dmesg`) or a CI time limit",
        15 => ": something outside the build asked it to stop (a CI time limit, a shutdown)",
        11 or 6 => ": it crashed; if this repeats, re-run with -v:d and report it",
        _ => "",
    };
}

/// <summary>Runs a <c>finetune</c> command with no caching (publishing, which has side effects elsewhere).</summary>
public sealed class FineTuneCommand : FineTuneToolTask
{
    /// <inheritdoc />
    public override bool Execute() => RunTool();
}
