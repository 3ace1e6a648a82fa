using System.Globalization;

namespace FineTune.Bench.FirstBuild;

/// <summary>
/// The C# compiler server (VBCSCompiler) outlives the build that starts it, so its CPU time is not in
/// the build's process tree. One this build started (found by an environment marker it inherited)
/// is measured and then stopped by its id; one already running belongs to someone else.
/// </summary>
internal sealed class CompilerServers
{
    private readonly int _pid;

    private CompilerServers(int pid, double cpu) { _pid = pid; CpuSeconds = cpu; }

    public double CpuSeconds { get; }

    public static HashSet<int> Running() => Servers().ToHashSet();

    public static CompilerServers? StartedBy(string marker, HashSet<int> before)
    {
        foreach (var pid in Servers())
        {
            if (before.Contains(pid)) continue;
            string environ;
            try { environ = File.ReadAllText($"/proc/{pid}/environ"); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (!environ.Contains("FIRST_BUILD_BENCH_MARKER=" + marker, StringComparison.Ordinal)) continue;
            // /proc/PID/stat fields 14 and 15: user and system time in clock ticks (100 per second on Linux).
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return new CompilerServers(pid, ticks / 100.0);
        }
        return null;
    }

    public void Stop()
    {
        try { System.Diagnostics.Process.GetProcessById(_pid).Kill(); }
        catch (ArgumentException) { } // already gone
    }

    private static IEnumerable<int> Servers()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (cmdline.Contains("VBCSCompiler", StringComparison.Ordinal)) yield return pid;
        }
    }
}
