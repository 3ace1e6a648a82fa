using System.Collections;
using System.Collections.Concurrent;
using FineTune.Build.Tasks;
using Microsoft.Build.Framework;

namespace FineTune.Build.Tests;

/// <summary>A finetune step whose "CLI" is a shell script (tests of what every step does around its tool).</summary>
internal sealed class ShellStep : FineTuneToolTask
{
    public override bool Execute() => RunTool();
    protected override string GenerateFullPathToTool() => "/bin/sh";
}

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("ft-step-").FullName;
    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Records what the task logs; logging one chosen line takes a while, as a busy console logger does.</summary>
internal sealed class RecordingEngine(string? slowLine, TimeSpan delay) : IBuildEngine
{
    private readonly ConcurrentQueue<string> _messages = new();
    public ConcurrentQueue<BuildErrorEventArgs> Errors { get; } = new();
    public IReadOnlyList<string> Messages => [.. _messages];

    public bool WaitForMessage(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_messages.Any(m => m.Contains(text, StringComparison.Ordinal))) return true;
            Thread.Sleep(20);
        }
        return false;
    }

    public void LogMessageEvent(BuildMessageEventArgs e)
    {
        if (slowLine is not null && e.Message?.Contains(slowLine, StringComparison.Ordinal) == true) Thread.Sleep(delay);
        _messages.Enqueue(e.Message ?? "");
    }

    public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Enqueue(e);
    public void LogWarningEvent(BuildWarningEventArgs e) => _messages.Enqueue("warning: " + e.Message);
    public void LogCustomEvent(CustomBuildEventArgs e) { }
    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => false;
    public bool ContinueOnError => false;
    public int LineNumberOfTaskNode => 0;
    public int ColumnNumberOfTaskNode => 0;
    public string ProjectFileOfTaskNode => "model.ftproj";
}
