using System.Text.Json;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// The cache can be trusted: a damaged entry (bit rot, a full disk, a copy cut short, a file
/// deleted by hand) is reported, moved aside and computed again, and the build still ends green with
/// the bytes a clean build gives. Faults are injected into copies of one trained cache, then a real
/// `dotnet build` runs.
/// </summary>
[Collection("pipeline")]
public sealed class CacheIntegrityTests(TrainedExampleFixture fixture) : IClassFixture<TrainedExampleFixture>
{
    /// <summary>One file of every kind of cache entry, and the step that owns it.</summary>
    private static readonly (string Cache, string Step, string File)[] EntryFiles =
    [
        ("format", "FineTuneFormat", "train.jsonl"),
        ("tokenize", "FineTuneTokenize", "train.bin"),
        ("train", "FineTuneTrain", "adapter_model.safetensors"),
        ("export-Q8_0", "FineTuneExport(Q8_0)", "tweet-caps-1.0.0.Q8_0.gguf"),
        ("modelfile", "FineTuneModelfile", "Modelfile"),
        ("samples", "FineTuneSamples", "samples.json"),
    ];

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("delete")]
    public void Damaged_cache_files_are_reported_moved_aside_and_rebuilt_to_the_clean_bytes(string damage)
    {
        using var clone = fixture.CopyWithCache();
        foreach (var (cache, _, file) in EntryFiles)
            Damage(Path.Combine(TrainedExampleFixture.Entry(clone.CacheDir, cache), file), damage);

        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());
        Assert.DoesNotContain("FT9001", build.Output);
        Assert.DoesNotContain("FT9002", build.Output);
        foreach (var (cache, step, file) in EntryFiles)
        {
            var entry = TrainedExampleFixture.Entry(clone.CacheDir, cache);
            // The warning names the step, the entry and the file, and the step ran again.
            Assert.Contains(build.Output.Split('\n'), l => l.Contains($"warning FT6020: {step}: the cached result {entry} is damaged: {file}", StringComparison.Ordinal));
            Assert.True(build.Ran(step), $"{step} did not run again:\n{build}");
            Assert.Contains(build.StepLines(step), l => l.Contains("running (its cached result was damaged)", StringComparison.Ordinal));
            // Moved aside, not deleted in place: another build may be reading it.
            Assert.Single(Directory.GetDirectories(Path.Combine(clone.CacheDir, cache), Path.GetFileName(entry) + ".damaged-*"));
            // The recomputed entry holds what the clean build's entry holds.
            var original = Path.Combine(TrainedExampleFixture.Entry(fixture.Trained.CacheDir, cache), file);
            Assert.True(File.ReadAllBytes(original).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(entry, file))), $"{cache}/{file} differs after healing");
        }
        fixture.AssertSameDeliverables(clone, build.ToString());

        // Healed for good: the next build has nothing to say and nothing to do.
        var again = clone.Dotnet("build");
        Assert.True(again.Succeeded, again.ToString());
        Assert.DoesNotContain("FT6020", again.Output);
        foreach (var (_, step, _) in EntryFiles)
            Assert.True(again.UpToDate(step), $"{step} is not up to date after healing:\n{again}");
    }

    /// <summary>Damage done in place after a build (the same checkout, so the size/time fast path applies) is found too.</summary>
    [Fact]
    public void A_gguf_changed_in_place_is_found_on_the_next_build_and_bin_gets_the_clean_bytes()
    {
        using var clone = fixture.CopyWithCache();
        var first = clone.Dotnet("build");
        Assert.True(first.Succeeded, first.ToString());
        Assert.DoesNotContain("FT6020", first.Output);

        // Same size, new bytes: only the hash can tell.
        var gguf = Path.Combine(TrainedExampleFixture.Entry(clone.CacheDir, "export-F16"), "tweet-caps-1.0.0.F16.gguf");
        Damage(gguf, "flip");
        // `dotnet clean` then build: the cached GGUF must not be copied into bin/ as it is.
        Assert.True(clone.Dotnet("clean").Succeeded);
        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());
        Assert.Contains("warning FT6020: FineTuneExport(F16): the cached result", build.Output);
        Assert.True(build.Ran("FineTuneExport(F16)"), build.ToString());
        Assert.False(build.Ran("FineTuneTrain"), build.ToString());
        fixture.AssertSameDeliverables(clone, build.ToString());
    }

    /// <summary>
    /// kill -9 of the training child (the OOM killer, a CI timeout) is named as such with what the
    /// next build does; that build resumes to the bytes of an uninterrupted run. A checkpoint
    /// damaged meanwhile is discarded with a warning and training starts over, to the same bytes.
    /// </summary>
    [Fact]
    public void Killed_training_says_so_resumes_to_the_same_bytes_and_a_damaged_checkpoint_starts_over()
    {
        using var clone = fixture.CopyWithCache();
        Directory.Delete(Path.Combine(clone.CacheDir, "train"), recursive: true);

        var checkpointCopy = Path.Combine(clone.Root, "checkpoint-copy");
        KillTrainingAfterItsFirstCheckpoint(clone, checkpointCopy);

        var resumed = clone.Dotnet("build");
        Assert.True(resumed.Succeeded, resumed.ToString());
        Assert.Contains("Resuming from the checkpoint at step", resumed.Output);
        fixture.AssertSameDeliverables(clone, resumed.ToString());

        // The same interruption again, now with the checkpoint's tensors damaged before the next build.
        var trainEntry = TrainedExampleFixture.Entry(clone.CacheDir, "train");
        Directory.Delete(trainEntry, recursive: true);
        ModelProjectSandbox.CopyAll(checkpointCopy, trainEntry + ".checkpoint");
        Damage(Path.Combine(trainEntry + ".checkpoint", "checkpoint", "state.safetensors"), "flip");
        var restarted = clone.Dotnet("build");
        Assert.True(restarted.Succeeded, restarted.ToString());
        Assert.Contains("warning FT3070: The checkpoint in", restarted.Output);
        Assert.Contains("state.safetensors does not match its recorded SHA-256", restarted.Output);
        Assert.DoesNotContain("Resuming from the checkpoint", restarted.Output);
        fixture.AssertSameDeliverables(clone, restarted.ToString());
    }

    private static void KillTrainingAfterItsFirstCheckpoint(ModelProjectSandbox clone, string checkpointCopy)
    {
        using var build = clone.StartDotnet("build");
        Assert.True(build.WaitForLine(l => l.Contains("Checkpoint saved at step 2/", StringComparison.Ordinal), TimeSpan.FromMinutes(5)), "no checkpoint was written:\n" + build.Output);
        build.KillProcess("finetune.dll", " train ");
        var result = build.WaitForExit(TimeSpan.FromMinutes(2));
        Assert.NotNull(result);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("error FT6021: FineTuneTrain: the finetune tool was killed by SIGKILL (signal 9) (exit code 137)", result.Output);
        Assert.Contains("The next build resumes training from its last checkpoint.", result.Output);
        Assert.DoesNotContain("FT9001", result.Output);
        var checkpoint = Assert.Single(Directory.GetDirectories(Path.Combine(clone.CacheDir, "train"), "*.checkpoint"));
        ModelProjectSandbox.CopyAll(checkpoint, checkpointCopy);
    }

    /// <summary>
    /// `dotnet clean` in a copy of a built project (bin/ and obj/ copied too, as `cp -r` does) removes
    /// the copy's artifacts and never the original's, even when the artifact list names them.
    /// </summary>
    [Fact]
    public void Clean_in_a_copied_project_leaves_the_original_untouched()
    {
        var originals = Directory.GetFiles(fixture.Trained.OutputDir).ToDictionary(f => f, File.ReadAllBytes);
        Assert.NotEmpty(originals);
        var copyRoot = Path.Combine(Path.GetTempPath(), "ft-it-copy-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            ModelProjectSandbox.CopyAll(fixture.Trained.Root, copyRoot);
            var copyProject = Path.Combine(copyRoot, "example-project");
            var copyOutput = Path.Combine(copyProject, "bin", "Debug");
            var list = Path.Combine(copyProject, "obj", "finetune", "artifacts.txt");
            // The list an older version wrote (absolute paths into the original), and paths that escape the output folder.
            File.AppendAllLines(list, [.. originals.Keys, "../../../example-project/data/tweets.jsonl", Path.Combine(fixture.Trained.ProjectDir, "lora.yaml")]);

            var clean = ModelProjectSandbox.Run("dotnet", ["clean", Path.Combine(copyProject, "example-project.csproj"), "-nodeReuse:false", "-tl:off", "-v:m", ModelProjectSandbox.InRepoToolsPrebuilt], copyProject);
            Assert.True(clean.Succeeded, clean.ToString());
            Assert.Empty(Directory.GetFiles(copyOutput, "*.gguf"));
            Assert.False(File.Exists(Path.Combine(copyOutput, "Modelfile")), clean.ToString());
            foreach (var (file, bytes) in originals)
                Assert.True(File.Exists(file) && File.ReadAllBytes(file).AsSpan().SequenceEqual(bytes), $"{file} of the original was touched:\n{clean}");
            Assert.True(File.Exists(Path.Combine(fixture.Trained.ProjectDir, "lora.yaml")));
            Assert.True(File.Exists(Path.Combine(copyProject, "data", "tweets.jsonl")));
        }
        finally
        {
            try { Directory.Delete(copyRoot, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>A quantization taken off GgufQuantizations leaves bin/ on the next build; files the build never wrote stay.</summary>
    [Fact]
    public void Quantizations_no_longer_listed_leave_bin_and_other_files_stay()
    {
        using var clone = fixture.CopyWithCache();
        Assert.True(clone.Dotnet("build").Succeeded);
        var notes = Path.Combine(clone.OutputDir, "notes.txt");
        File.WriteAllText(notes, "mine");
        clone.SetProperty("GgufQuantizations", "Q8_0");
        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());
        Assert.Equal(["tweet-caps-1.0.0.Q8_0.gguf"], clone.Ggufs().Select(Path.GetFileName));
        Assert.Contains("FineTune: removed tweet-caps-1.0.0.F16.gguf from", build.Output);
        Assert.Equal("mine", File.ReadAllText(notes));
        Assert.False(build.Ran("FineTuneTrain"), build.ToString());
    }

    /// <summary>
    /// Two builds on one FineTuneCacheDir at the same time (a CI matrix, two terminals): both
    /// succeed with the clean bytes, training runs once (the other build waits for it), and the
    /// cache holds one sound entry per step, nothing temporary.
    /// </summary>
    [Fact]
    public void Two_concurrent_builds_on_one_cache_both_succeed_with_identical_outputs()
    {
        using var a = ModelProjectSandbox.CreateFromExample(maxSteps: null, withTinyBaseModel: true);
        using var b = ModelProjectSandbox.CreateFromExample(maxSteps: null, withTinyBaseModel: true);
        var shared = Path.Combine(a.Root, "shared-cache");
        ModelProjectSandbox.CopyAll(fixture.Trained.CacheDir, shared);
        Directory.Delete(Path.Combine(shared, "train"), recursive: true);
        foreach (var s in new[] { a, b })
            File.Copy(Path.Combine(fixture.Trained.ProjectDir, "lora.yaml"), Path.Combine(s.ProjectDir, "lora.yaml"), overwrite: true);

        using var first = a.StartDotnet("build", $"-p:FineTuneCacheDir={shared}");
        using var second = b.StartDotnet("build", $"-p:FineTuneCacheDir={shared}");
        var ra = first.WaitForExit(TimeSpan.FromMinutes(15));
        var rb = second.WaitForExit(TimeSpan.FromMinutes(15));
        Assert.NotNull(ra);
        Assert.NotNull(rb);
        Assert.True(ra.Succeeded, ra.ToString());
        Assert.True(rb.Succeeded, rb.ToString());
        Assert.Equal(1, new[] { ra, rb }.Count(r => r.Ran("FineTuneTrain")));
        fixture.AssertSameDeliverables(a, ra.ToString());
        fixture.AssertSameDeliverables(b, rb.ToString());
        Assert.Empty(Directory.GetDirectories(shared, "*.tmp-*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetDirectories(shared, "*.damaged-*", SearchOption.AllDirectories));
        Assert.Single(Directory.GetDirectories(Path.Combine(shared, "train")), d => !Path.GetFileName(d).Contains('.'));
    }

    /// <summary>
    /// A second checkout of the same sources in another folder (another clone, another CI
    /// workspace) runs the README's `dotnet build example-project` with the first checkout's cache:
    /// its freshly compiled tool has the same bytes, so every step is up to date and bin/ gets the
    /// same files; nothing is formatted, trained or exported again.
    /// </summary>
    [Fact]
    public void A_checkout_in_another_folder_sharing_the_cache_is_all_up_to_date()
    {
        var root = Path.Combine(Path.GetTempPath(), "ft-it-checkout-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            CopyCheckout(RepoPaths.Root, root);
            var project = Path.Combine(root, "example-project");
            File.Copy(Path.Combine(fixture.Trained.ProjectDir, "lora.yaml"), Path.Combine(project, "lora.yaml"), overwrite: true);
            var shared = Path.Combine(root, "shared-cache");
            ModelProjectSandbox.CopyAll(fixture.Trained.CacheDir, shared);

            var build = ModelProjectSandbox.Run("dotnet", ["build", "example-project", "-nodeReuse:false", "-tl:off", "-v:m", $"-p:FineTuneCacheDir={shared}"], root);
            Assert.True(build.Succeeded, build.ToString());
            foreach (var dll in Directory.GetFiles(Path.Combine(RepoPaths.Root, "src", "FineTune.Cli", "bin", "Debug", "net10.0"), "FineTune.*.dll").Append("finetune.dll"))
            {
                var name = Path.GetFileName(dll);
                Assert.True(File.ReadAllBytes(Path.Combine(RepoPaths.Root, "src", "FineTune.Cli", "bin", "Debug", "net10.0", name)).AsSpan()
                    .SequenceEqual(File.ReadAllBytes(Path.Combine(root, "src", "FineTune.Cli", "bin", "Debug", "net10.0", name))), $"{name} compiled differently in {root}");
            }
            foreach (var (_, step, _) in EntryFiles)
                Assert.True(build.UpToDate(step) && !build.Ran(step), $"{step} is not up to date in the second checkout:\n{build}");
            foreach (var file in TrainedExampleFixture.Deliverables(fixture.Trained))
                Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(project, "bin", "Debug", Path.GetFileName(file)))),
                    $"{Path.GetFileName(file)} differs in the second checkout:\n{build}");
            Assert.Equal(Directory.GetDirectories(fixture.Trained.CacheDir, "*", SearchOption.AllDirectories).Length,
                Directory.GetDirectories(shared, "*", SearchOption.AllDirectories).Length);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// A clone of this repository (same commit: the tool's version string carries it), with this
    /// working tree's changes laid over it so an uncommitted edit is tested too, and the npm oracles by link.
    /// </summary>
    private static void CopyCheckout(string repo, string to)
    {
        var clone = ModelProjectSandbox.Run("git", ["clone", "-q", repo, to], repo);
        Assert.True(clone.Succeeded, clone.ToString());
        var list = ModelProjectSandbox.Run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], repo);
        Assert.True(list.Succeeded, list.ToString());
        foreach (var rel in list.Output.Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var source = Path.Combine(repo, rel);
            if (!File.Exists(source)) continue; // deleted in the working tree
            var target = Path.Combine(to, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target, overwrite: true);
        }
        Directory.CreateSymbolicLink(Path.Combine(to, "node_modules"), Path.Combine(repo, "node_modules"));
    }

    /// <summary>
    /// The disk holding the cache fills up while the GGUF is written: a clear error (not "internal
    /// error"), no partial file in the cache or bin/, and once there is room the next build succeeds
    /// with the clean bytes. A real full disk: a 10 MiB tmpfs as FineTuneCacheDir.
    /// </summary>
    [SmallDiskFact]
    public void A_full_disk_while_exporting_is_a_clear_error_with_no_partial_file_and_the_next_build_succeeds()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: null, withTinyBaseModel: true);
        File.Copy(Path.Combine(fixture.Trained.ProjectDir, "lora.yaml"), Path.Combine(clone.ProjectDir, "lora.yaml"), overwrite: true);
        var cache = Path.Combine(clone.Root, "small-cache");
        using var disk = SmallDisk.Mount(cache, "10m");
        // Training fits (a few hundred KiB); a 25 MiB GGUF does not.
        foreach (var step in new[] { "format", "tokenize", "train" })
            ModelProjectSandbox.CopyAll(Path.Combine(fixture.Trained.CacheDir, step), Path.Combine(cache, step));

        var full = clone.Dotnet("build", $"-p:FineTuneCacheDir={cache}");
        Assert.False(full.Succeeded, full.ToString());
        Assert.Contains("error FT6023: No space left on the device while writing", full.Output);
        Assert.DoesNotContain("FT9002", full.Output);
        Assert.DoesNotContain("FT9001", full.Output);
        Assert.False(full.Ran("FineTuneTrain"), full.ToString());
        Assert.Empty(Directory.GetDirectories(cache, "*.tmp-*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(cache, "*.gguf", SearchOption.AllDirectories));
        Assert.Empty(clone.Ggufs());

        disk.Resize("200m");
        var build = clone.Dotnet("build", $"-p:FineTuneCacheDir={cache}");
        Assert.True(build.Succeeded, build.ToString());
        fixture.AssertSameDeliverables(clone, build.ToString());
    }

    /// <summary>Flips bytes in the middle (same size), cuts the file in half, or deletes it.</summary>
    private static void Damage(string file, string how)
    {
        Assert.True(File.Exists(file), file);
        switch (how)
        {
            case "flip":
                var bytes = File.ReadAllBytes(file);
                var start = Math.Max(0, bytes.Length / 2 - 32);
                for (var i = start; i < Math.Min(start + 64, bytes.Length); i++) bytes[i] ^= 0x20;
                File.WriteAllBytes(file, bytes);
                break;
            case "truncate":
                using (var stream = new FileStream(file, FileMode.Open)) stream.SetLength(stream.Length / 2);
                break;
            case "delete":
                File.Delete(file);
                break;
            default:
                throw new ArgumentException(how);
        }
    }
}
