using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FineTune.Bench.FirstBuild;

// The example's first build as a user runs it: a fresh clone of HEAD (no bin/, obj/, node_modules
// or generated base model), then the README's first command, `dotnet build example-project`.
// Prints one JSON line per run: wall seconds, CPU seconds of every process the build started
// (this process reaps orphaned MSBuild nodes and a compiler server the build started, so their CPU
// is counted), and the time of each part from the build's own binary log: restore, compilation of
// the tasks and the CLI, npm, and each pipeline step.
// Usage: first-build-bench [--repo DIR] [--repeat N] [--link-node-modules] [--machine-compiler-setting]
//   --link-node-modules  link the repository's node_modules into the clone (a machine without
//                        network); npm then does not run, so the number leaves out its cost.
//   --machine-compiler-setting  keep this machine's UseSharedCompilation environment variable. By
//                        default the build gets a user's default (the variable removed): the shared
//                        compiler server, which this machine's environment turns off (UseSharedCompilation=false
//                        makes every project start its own csc: ~50% more compile CPU).
var repo = Path.GetFullPath(Arg("--repo") ?? FindRepo(Directory.GetCurrentDirectory()));
var repeat = int.Parse(Arg("--repeat") ?? "1", CultureInfo.InvariantCulture);
var linkNodeModules = args.Contains("--link-node-modules");
var machineCompilerSetting = args.Contains("--machine-compiler-setting");
var machineSharedCompilation = Environment.GetEnvironmentVariable("UseSharedCompilation");
var commit = Capture("git", repo, "rev-parse", "HEAD").Trim();
Orphans.BecomeReaper();

for (var run = 0; run < repeat; run++)
{
    var dir = Directory.CreateTempSubdirectory("first-build-").FullName;
    try
    {
        var clone = Path.Combine(dir, "repo");
        Capture("git", dir, "clone", "--quiet", repo, clone);
        if (linkNodeModules) Directory.CreateSymbolicLink(Path.Combine(clone, "node_modules"), Path.Combine(repo, "node_modules"));
        var binlog = Path.Combine(dir, "build.binlog");
        var load1 = LoadAverage();
        var cpu0 = ChildUsage.Seconds();
        var clock = Stopwatch.StartNew();
        var (code, output) = Run(clone, machineCompilerSetting, "build", "example-project", "-bl:" + binlog);
        var wall = clock.Elapsed.TotalSeconds;
        var startedServer = Orphans.ReapAll(TimeSpan.FromMinutes(2));
        var cpu1 = ChildUsage.Seconds();
        var targets = PerformanceSummary.Targets(clone, binlog);
        var tasks = PerformanceSummary.Tasks(clone, binlog);
        double Target(string name) => Math.Round(targets.GetValueOrDefault(name) / 1000.0, 2);
        var steps = targets.Where(t => t.Key.StartsWith("FineTune", StringComparison.Ordinal) && t.Key != "FineTunePrepare")
            .OrderByDescending(t => t.Value).ToDictionary(t => t.Key, t => Math.Round(t.Value / 1000.0, 2));
        var pipeline = steps.Values.Sum() + Target("GenerateTinyBaseModel");
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "first-build",
            command = "dotnet build example-project",
            commit,
            run,
            succeeded = code == 0,
            cores = Environment.ProcessorCount,
            load_average_1m = load1,
            node_modules = linkNodeModules ? "linked (npm not run)" : "none (fresh clone)",
            use_shared_compilation = machineCompilerSetting
                ? $"machine's environment ({machineSharedCompilation ?? "unset"})"
                : "user default (variable removed)",
            wall_s = Math.Round(wall, 2),
            cpu_s = Math.Round(cpu1.User + cpu1.System - cpu0.User - cpu0.System, 2),
            compiler_server = startedServer
                ? "started by this build (its CPU is counted; stopped after the build)"
                : machineCompilerSetting && string.Equals(machineSharedCompilation, "false", StringComparison.OrdinalIgnoreCase)
                    ? "not used (UseSharedCompilation=false: each csc ran as a child process, its CPU is counted)"
                    : "already running (the compile's CPU is in that server, not counted)",
            restore_s = Target("Restore"),
            compile_sum_s = Target("CoreCompile"),
            before_pipeline_s = Math.Round(wall - pipeline, 2),
            base_model_s = Target("GenerateTinyBaseModel"),
            npm_s = Math.Round(tasks.GetValueOrDefault("Exec") / 1000.0, 2),
            steps_s = steps,
            pipeline_s = Math.Round(pipeline, 2),
        }));
        if (code != 0) Console.Error.WriteLine(output);
    }
    finally
    {
        Directory.Delete(dir, recursive: true);
    }
}

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static string FindRepo(string from)
{
    for (var d = new DirectoryInfo(from); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "FineTune.Build.sln"))) return d.FullName;
    throw new InvalidOperationException("run from inside the repository, or pass --repo");
}

static double LoadAverage() =>
    double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

static string Capture(string file, string cwd, params string[] arguments)
{
    var psi = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in arguments) psi.ArgumentList.Add(a);
    using var p = Process.Start(psi)!;
    var stdout = p.StandardOutput.ReadToEndAsync();
    var stderr = p.StandardError.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed: {stderr}");
    return stdout.Result;
}

// The user's command, unchanged, except that MSBuild's worker nodes exit with the build (so their CPU
// time is counted and nothing is left running). Unless asked to keep the machine's setting, the
// compiler setting is a user's default: this machine's environment sets UseSharedCompilation=false.
static (int Code, string Output) Run(string cwd, bool machineCompilerSetting, params string[] arguments)
{
    var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in arguments) psi.ArgumentList.Add(a);
    psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
    psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
    if (!machineCompilerSetting) psi.Environment.Remove("UseSharedCompilation");
    using var p = Process.Start(psi)!;
    var stdout = p.StandardOutput.ReadToEndAsync();
    var stderr = p.StandardError.ReadToEnd();
    p.WaitForExit();
    return (p.ExitCode, stdout.Result + stderr);
}
