using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A `dotnet build` running in its own session and process group, as a shell runs a foreground
/// job, so a test can interrupt it the ways people and CI do: SIGINT to the whole group (Ctrl+C in
/// a terminal reaches every process of the foreground job, MSBuild's nodes and the finetune child
/// included) or SIGINT to the top `dotnet` process only (what a CI runner sends when a job is
/// cancelled). Output lines are collected as they arrive so the test can wait for a given one.
/// </summary>
internal sealed partial class InterruptibleBuild : IDisposable
{
    private const int SIGINT = 2;
    private const int SIGKILL = 9;
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Lock _gate = new();

    private InterruptibleBuild(Process process) => _process = process;

    /// <summary>The process id of the top `dotnet`; also its session and process group id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Starts <c>dotnet</c> with <paramref name="args"/> in a new session (<c>setsid</c>).</summary>
    public static InterruptibleBuild Start(IEnumerable<string> args, string workingDirectory)
    {
        // setsid: a new session and process group, so signalling the group never reaches the test
        // host. env --default-signal=INT: a job started from a non-interactive shell inherits SIGINT
        // as ignored, and .NET keeps an inherited "ignore"; a terminal's foreground job never has it.
        var psi = new ProcessStartInfo("setsid") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["env", "--default-signal=INT", "dotnet", .. args]) psi.ArgumentList.Add(a);
        ModelProjectSandbox.SetBuildEnvironment(psi);
        var process = Process.Start(psi)!;
        var build = new InterruptibleBuild(process);
        process.OutputDataReceived += (_, e) => build.Add(e.Data);
        process.ErrorDataReceived += (_, e) => build.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return build;
    }

    /// <summary>Everything printed so far.</summary>
    public string Output
    {
        get { lock (_gate) return string.Join('\n', _lines); }
    }

    /// <summary>Waits until a line matching <paramref name="match"/> is printed; false on timeout or when the build ends first.</summary>
    public bool WaitForLine(Func<string, bool> match, TimeSpan timeout) => WaitForLine(match, timeout, out _);

    /// <summary>As <see cref="WaitForLine(Func{string, bool}, TimeSpan)"/>, returning the line.</summary>
    public bool WaitForLine(Func<string, bool> match, TimeSpan timeout, out string line)
    {
        var deadline = DateTime.UtcNow + timeout;
        var seen = 0;
        while (true)
        {
            lock (_gate)
            {
                for (; seen < _lines.Count; seen++)
                    if (match(_lines[seen])) { line = _lines[seen]; return true; }
            }
            // Lines printed just before exit may still be in the pipe: one more pass after the exit.
            if (_process.HasExited && _process.WaitForExit(0))
            {
                lock (_gate)
                    for (; seen < _lines.Count; seen++)
                        if (match(_lines[seen])) { line = _lines[seen]; return true; }
                line = "";
                return false;
            }
            if (DateTime.UtcNow > deadline) { line = ""; return false; }
            Thread.Sleep(50);
        }
    }

    /// <summary>Ctrl+C in a terminal: SIGINT to every process of the job's process group.</summary>
    public void InterruptGroup() => Check(Kill(-ProcessId, SIGINT));

    /// <summary>A CI runner cancelling the step: SIGINT to the top process only.</summary>
    public void InterruptTopProcess() => Check(Kill(ProcessId, SIGINT));

    /// <summary>
    /// <c>kill -9</c> of the one process of the job whose command line contains every one of
    /// <paramref name="commandLineParts"/> (e.g. the finetune child training); returns its pid.
    /// </summary>
    public int KillProcess(params string[] commandLineParts)
    {
        var pid = GroupMembers().Single(p => commandLineParts.All(part => CommandLine(p).Contains(part, StringComparison.Ordinal)));
        Check(Kill(pid, SIGKILL));
        return pid;
    }

    /// <summary>Waits for the top process to exit; null when it has not within <paramref name="timeout"/>.</summary>
    public BuildResult? WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return null;
        _process.WaitForExit(); // drains the redirected output
        return new BuildResult(_process.ExitCode, Output);
    }

    /// <summary>Processes still alive in the job's process group (pid and command line), waiting up to <paramref name="timeout"/> for them to go.</summary>
    public IReadOnlyList<string> ProcessesLeft(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = GroupMembers();
            if (left.Count == 0 || DateTime.UtcNow > deadline)
                return left.Select(p => $"{p} {CommandLine(p)}").ToList();
            Thread.Sleep(200);
        }
    }

    private List<int> GroupMembers()
    {
        var members = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // A zombie has exited; it only waits for its parent to collect the exit status.
                if (fields[0] != "Z" && int.Parse(fields[2]) == ProcessId) members.Add(pid);
            }
            catch (IOException) { } // ended while we looked
            catch (UnauthorizedAccessException) { }
        }
        return members;
    }

    private static string CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim(); }
        catch (IOException) { return "(ended)"; }
    }

    private void Add(string? line)
    {
        if (line is null) return;
        lock (_gate) _lines.Add(line);
    }

    private static void Check(int result)
    {
        if (result != 0) throw new InvalidOperationException($"kill failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>Never leaves a build behind, whatever the test's outcome.</summary>
    public void Dispose()
    {
        foreach (var pid in GroupMembers()) Kill(pid, SIGKILL);
        _process.Dispose();
    }
}
