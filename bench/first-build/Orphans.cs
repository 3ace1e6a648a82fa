using System.Globalization;
using System.Runtime.InteropServices;

namespace FineTune.Bench.FirstBuild;

/// <summary>
/// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER), so MSBuild
/// nodes that outlive the build's main process, and a compiler server the build started, are
/// waited for here and their CPU time lands in <see cref="ChildUsage"/> instead of being lost to init.
/// </summary>
internal static class Orphans
{
    [DllImport("libc", SetLastError = true)]
    private static extern int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [DllImport("libc", SetLastError = true)]
    private static extern int waitpid(int pid, out int status, int options);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int PrSetChildSubreaper = 36;
    private const int WNoHang = 1;

    public static void BecomeReaper()
    {
        if (prctl(PrSetChildSubreaper, 1, 0, 0, 0) != 0)
            throw new InvalidOperationException($"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>
    /// Waits for every orphan that was reparented here (after the build itself has exited); the
    /// compiler server, which would idle for minutes, is stopped first by its id. Returns whether a
    /// compiler server was among them.
    /// </summary>
    public static bool ReapAll(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var sawServer = false;
        while (true)
        {
            var children = Children();
            if (children.Count == 0) return sawServer;
            foreach (var (pid, isServer) in children)
            {
                if (isServer)
                {
                    sawServer = true;
                    kill(pid, 15);
                }
                waitpid(pid, out _, WNoHang);
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"processes left by the build still run: {string.Join(", ", children.Select(c => c.Pid))}");
            Thread.Sleep(100);
        }
    }

    private static List<(int Pid, bool IsServer)> Children()
    {
        var self = Environment.ProcessId;
        var result = new List<(int, bool)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], CultureInfo.InvariantCulture) != self) continue;
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                result.Add((pid, cmdline.Contains("VBCSCompiler", StringComparison.Ordinal)));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return result;
    }
}
