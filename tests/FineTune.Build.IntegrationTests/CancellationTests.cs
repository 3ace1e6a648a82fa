using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// Cancelling `dotnet build` during training, the two ways it happens: Ctrl+C in a terminal
/// (SIGINT to the whole foreground job) and a CI runner cancelling the job (SIGINT to the top
/// `dotnet` only). Each time the build must stop promptly with a clear error, leave no process and
/// no half-written artifact behind, and keep a checkpoint that the next build resumes from; the
/// adapter finally trained must be byte-identical to one trained without interruption.
/// </summary>
[Collection("pipeline")]
public sealed partial class CancellationTests(ITestOutputHelper output)
{
    private const int MaxSteps = 12;
    // Time for the finetune child to finish its step, write the checkpoint and for MSBuild to wind
    // down; a step of the tiny model takes about a second on 2 cores.
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan ReachTrainingTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public void Interrupted_builds_stop_cleanly_and_the_next_build_resumes_to_the_uninterrupted_adapter()
    {
        var clock = Stopwatch.StartNew();
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: MaxSteps, withTinyBaseModel: true);
        // A progress line per step and a checkpoint every 2 steps (save_steps: 2 from the sandbox).
        clone.SetLoraValue("logging_steps", "1");

        // 1. Ctrl+C in a terminal, once training has written a checkpoint and moved on.
        int firstStop;
        using (var build = clone.StartDotnet("build"))
        {
            Assert.True(build.WaitForLine(l => CheckpointSaved().IsMatch(l), ReachTrainingTimeout), "no checkpoint was written:\n" + build.Output);
            Assert.True(build.WaitForLine(l => Progress(l) == 3, TimeSpan.FromMinutes(1)), "training did not go on after the checkpoint:\n" + build.Output);
            build.InterruptGroup();
            firstStop = AssertStoppedCleanly(build, clone, afterStep: 3);
        }
        output.WriteLine($"terminal Ctrl+C: stopped at step {firstStop}, {clock.Elapsed.TotalSeconds:F1}s into the test");

        // 2. A CI runner cancelling the job while the resumed training runs.
        int secondStop;
        using (var build = clone.StartDotnet("build"))
        {
            Assert.True(build.WaitForLine(l => l.Contains($"Resuming from the checkpoint at step {firstStop}/{MaxSteps}", StringComparison.Ordinal), ReachTrainingTimeout),
                $"the build did not resume from step {firstStop}:\n" + build.Output);
            Assert.True(build.WaitForLine(l => Progress(l) == firstStop + 1, TimeSpan.FromMinutes(1)), "the resumed training made no progress:\n" + build.Output);
            build.InterruptTopProcess();
            secondStop = AssertStoppedCleanly(build, clone, afterStep: firstStop + 1);
        }
        output.WriteLine($"CI-style SIGINT: stopped at step {secondStop}, {clock.Elapsed.TotalSeconds:F1}s into the test");

        // 3. The next build resumes and finishes.
        var final = clone.Dotnet("build");
        Assert.True(final.Succeeded, final.ToString());
        Assert.Contains($"Resuming from the checkpoint at step {secondStop}/{MaxSteps}", final.Output);
        Assert.True(final.Ran("FineTuneTrain"), final.ToString());
        Assert.NotEmpty(clone.Ggufs());
        var trainDir = Assert.Single(ResultDirectories(clone, "train"));
        output.WriteLine($"resumed build finished, {clock.Elapsed.TotalSeconds:F1}s into the test");
        Assert.Empty(CheckpointDirectories(clone)); // a finished step removes its checkpoint

        // What "the checkpoint is usable" means to a user: the adapter is the one an uninterrupted
        // run trains. The reference is `finetune train` on the same tokens, run straight through, naming
        // the base model as the build does (the project's BaseModel as written).
        var reference = Path.Combine(clone.Root, "reference");
        var tokens = Assert.Single(ResultDirectories(clone, "tokenize"));
        var train = ModelProjectSandbox.Run("dotnet",
            [RepoPaths.CliDll, "train", "--base-model", Path.Combine(clone.ProjectDir, "models", "base"), "--base-model-name", "models/base", "--data", tokens,
             "--config", Path.Combine(clone.ProjectDir, "lora.yaml"), "--device", "auto",
             "--out", Path.Combine(reference, "out"), "--checkpoint-dir", Path.Combine(reference, "checkpoint")],
            clone.ProjectDir);
        Assert.True(train.Succeeded, train.ToString());
        output.WriteLine($"reference run finished, {clock.Elapsed.TotalSeconds:F1}s into the test");
        foreach (var file in new[] { "adapter_model.safetensors", "adapter_config.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(reference, "out", file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(trainDir, file))),
                $"{file} after two interruptions differs from an uninterrupted run's");
        // The metrics carried through both checkpoints: every step once, in order, with the same losses.
        Assert.Equal(StepLosses(Path.Combine(reference, "out", "metrics.jsonl")), StepLosses(Path.Combine(trainDir, "metrics.jsonl")));
    }

    /// <summary>Asserts a clean stop; returns the step the checkpoint holds.</summary>
    private int AssertStoppedCleanly(InterruptibleBuild build, ModelProjectSandbox clone, int afterStep)
    {
        var clock = Stopwatch.StartNew();
        var result = build.WaitForExit(StopTimeout);
        output.WriteLine($"exit {result?.ExitCode} {clock.Elapsed.TotalSeconds:F1}s after SIGINT");
        Assert.True(result is not null, $"the build was still running {StopTimeout.TotalSeconds:F0}s after SIGINT:\n{build.Output}");
        Assert.NotEqual(0, result.ExitCode);
        // The whole output on failure: xUnit's Contains shows only the start of a long string.
        Assert.True(result.Output.Contains("error FT6013: FineTuneTrain was cancelled. The next build resumes training from its last checkpoint.", StringComparison.Ordinal),
            $"no FT6013 for a clean stop (exit {result.ExitCode}):\n{result.Output}");
        Assert.DoesNotContain("FT9001", result.Output); // no "tool failed" from a crash or a kill
        Assert.DoesNotContain("Unhandled exception", result.Output);
        Assert.Empty(build.ProcessesLeft(TimeSpan.FromSeconds(30)));
        output.WriteLine($"process group empty {clock.Elapsed.TotalSeconds:F1}s after SIGINT");

        // Nothing half-written: no artifact in bin/, no temporary or incomplete entry in the cache.
        Assert.Empty(Directory.Exists(clone.OutputDir) ? Directory.GetFiles(clone.OutputDir) : Array.Empty<string>());
        Assert.Empty(Directory.GetDirectories(clone.CacheDir, "*.tmp-*", SearchOption.AllDirectories));
        foreach (var stepDir in Directory.GetDirectories(clone.CacheDir))
            foreach (var entry in ResultDirectories(clone, Path.GetFileName(stepDir)))
                Assert.True(File.Exists(Path.Combine(entry, ".complete")), $"{entry} has no .complete marker");
        Assert.Empty(ResultDirectories(clone, "train"));

        // The checkpoint holds the step training stopped after, at or beyond the one we saw.
        var checkpoint = Path.Combine(Assert.Single(CheckpointDirectories(clone)), "checkpoint");
        Assert.True(File.Exists(Path.Combine(checkpoint, "state.safetensors")), checkpoint);
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(checkpoint, "state.json")));
        var step = state.RootElement.GetProperty("step").GetInt32();
        // Below the step we saw means training was killed before its own checkpoint landed.
        Assert.True(step >= afterStep && step < MaxSteps, $"the checkpoint holds step {step}, expected {afterStep} to {MaxSteps - 1}:\n{result.Output}");
        Assert.Contains($"Stopped at step {step}/{MaxSteps}", result.Output);
        return step;
    }

    private static int? Progress(string line)
    {
        var m = ProgressLine().Match(line);
        return m.Success ? int.Parse(m.Groups[1].Value) : null;
    }

    /// <summary>Completed results of a step in the cache (not its checkpoint or temporary folders).</summary>
    private static string[] ResultDirectories(ModelProjectSandbox clone, string step)
    {
        var dir = Path.Combine(clone.CacheDir, step);
        return Directory.Exists(dir) ? Directory.GetDirectories(dir).Where(d => !Path.GetFileName(d).Contains('.')).ToArray() : [];
    }

    private static string[] CheckpointDirectories(ModelProjectSandbox clone)
    {
        var dir = Path.Combine(clone.CacheDir, "train");
        return Directory.Exists(dir) ? Directory.GetDirectories(dir, "*.checkpoint") : [];
    }

    private static List<(int Step, double Loss)> StepLosses(string metricsFile) =>
        File.ReadLines(metricsFile)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _))
            .Select(e => (e.GetProperty("step").GetInt32(), e.GetProperty("loss").GetDouble()))
            .ToList();

    [GeneratedRegex(@"^\s*step (\d+)/\d+ loss ")]
    private static partial Regex ProgressLine();

    [GeneratedRegex(@"Checkpoint saved at step \d+/")]
    private static partial Regex CheckpointSaved();
}
