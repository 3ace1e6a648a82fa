using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace FineTune.Bench.FirstBuild;

/// <summary>
/// MSBuild's own per-target and per-task times: the binary log replayed through the console logger's
/// performance summary (<c>dotnet msbuild build.binlog -clp:PerformanceSummary</c>). A target's time is
/// summed over every project that ran it (compilation runs on two nodes at once, so its sum can exceed
/// the wall time it took).
/// </summary>
internal static partial class PerformanceSummary
{
    public static Dictionary<string, double> Targets(string cwd, string binlog) => Section(Replay(cwd, binlog), "Target Performance Summary:");

    public static Dictionary<string, double> Tasks(string cwd, string binlog) => Section(Replay(cwd, binlog), "Task Performance Summary:");

    private static readonly Dictionary<string, string> Replays = [];

    private static string Replay(string cwd, string binlog)
    {
        if (Replays.TryGetValue(binlog, out var cached)) return cached;
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["msbuild", binlog, "-nologo", "-v:m", "-clp:PerformanceSummary"]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return Replays[binlog] = stdout.Result;
    }

    private static Dictionary<string, double> Section(string text, string heading)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        var at = text.IndexOf(heading, StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException($"no '{heading}' in the replayed log");
        foreach (var line in text[(at + heading.Length)..].Split('\n').Skip(1))
        {
            var m = Row().Match(line);
            if (!m.Success) break;
            result[m.Groups[2].Value] = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        return result;
    }

    [GeneratedRegex(@"^\s+(\d+) ms\s+(\S+)\s+\d+ calls\s*$")]
    private static partial Regex Row();
}
