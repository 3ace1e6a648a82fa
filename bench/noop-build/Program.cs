using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

// The no-op build of an already built model project, three ways, alternating, in one run:
//   off       FineTuneEnabled=false: MSBuild's own floor for this project (the strongest peer: no pipeline at all);
//   no-op     a plain second `dotnet build`: every step verifies its entry by size and time only;
//   rehash    the same after touching every cache file: every entry is verified by SHA-256.
// Usage: noop-build-bench <project.csproj> [rounds]. The project must have been built once.
var project = Path.GetFullPath(args[0]);
var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
var cache = Path.Combine(Path.GetDirectoryName(project)!, "obj", "finetune", "cache");
if (!Directory.Exists(cache)) throw new InvalidOperationException($"build {project} once first: no {cache}");

double Build(params string[] extra) => Run(true, extra);

double Run(bool mustBeNoop, params string[] extra)
{
    var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in (string[])["build", project, "-nodeReuse:false", "-tl:off", "-v:m", "-p:BuildProjectReferences=false", .. extra]) psi.ArgumentList.Add(a);
    psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
    psi.Environment["DOTNET_NOLOGO"] = "1";
    var clock = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    var output = p.StandardOutput.ReadToEndAsync();
    p.StandardError.ReadToEnd();
    p.WaitForExit();
    var seconds = clock.Elapsed.TotalSeconds;
    if (p.ExitCode != 0 || (mustBeNoop && output.Result.Contains(": running", StringComparison.Ordinal)))
        throw new InvalidOperationException("not a no-op build:\n" + output.Result);
    return seconds;
}

void Touch()
{
    var now = DateTime.UtcNow;
    foreach (var f in Directory.EnumerateFiles(cache, "*", SearchOption.AllDirectories)) File.SetLastWriteTimeUtc(f, now);
}

Run(false); // warm-up: restores, brings the cache up to date with this tool, fills the hash memo
var times = new Dictionary<string, List<double>> { ["off"] = [], ["noop"] = [], ["rehash"] = [] };
for (var r = 0; r < rounds; r++)
{
    times["off"].Add(Build("-p:FineTuneEnabled=false"));
    times["noop"].Add(Build());
    Touch();
    times["rehash"].Add(Build());
}
double Median(List<double> xs) { var s = xs.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
var cacheBytes = Directory.EnumerateFiles(cache, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
Console.WriteLine(JsonSerializer.Serialize(new
{
    project,
    rounds,
    cache_mib = Math.Round(cacheBytes / 1048576.0, 1),
    median_seconds = times.ToDictionary(t => t.Key, t => Math.Round(Median(t.Value), 2)),
    noop_over_off = Math.Round(Median(times["noop"]) / Median(times["off"]), 2),
    rehash_over_noop = Math.Round(Median(times["rehash"]) / Median(times["noop"]), 2),
    all_seconds = times.ToDictionary(t => t.Key, t => t.Value.Select(x => Math.Round(x, 2))),
}));
