using System.Runtime.InteropServices;

namespace FineTune.Build.Tasks;

/// <summary>
/// Asks the <c>finetune</c> child processes of this process to stop with SIGTERM and waits for them,
/// so training writes its checkpoint before MSBuild's cancellation kills the process tree. ToolTask
/// alone would kill at once and could cut a checkpoint write short.
/// </summary>
/// <remarks>
/// SIGTERM rather than SIGINT: when Ctrl+C is pressed in a terminal the child, being in the
/// terminal's foreground process group, has already received a SIGINT; the CLI treats a second
/// SIGINT as "kill now" but any number of SIGTERMs as the same clean stop. When the build is
/// cancelled some other way (a CI runner signalling only the top <c>dotnet</c> process, an IDE)
/// this SIGTERM is the only signal the child gets.
/// </remarks>
internal static partial class GracefulCancellation
{
    private const int SIGTERM = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>
    /// Signals every child whose command line holds <paramref name="cliPath"/> (the whole path: another
    /// step's tool of the same name, started from another folder, is not this step's); waits up to
    /// <paramref name="timeout"/> for all to exit. True when there was a child and every one exited.
    /// </summary>
    public static bool StopChildren(string cliPath, TimeSpan timeout)
    {
        if (!OperatingSystem.IsLinux()) return false;
        var children = FindChildren(Environment.ProcessId, cliPath);
        foreach (var pid in children) Kill(pid, SIGTERM);
        var deadline = DateTime.UtcNow + timeout;
        while (children.Any(p => Directory.Exists($"/proc/{p}")) && DateTime.UtcNow < deadline)
            Thread.Sleep(100);
        return children.Count > 0 && !children.Any(p => Directory.Exists($"/proc/{p}"));
    }

    private static List<int> FindChildren(int parent, string marker)
    {
        var result = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1]) != parent) continue;
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.Contains(marker, StringComparison.Ordinal)) result.Add(pid);
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return result;
    }
}
