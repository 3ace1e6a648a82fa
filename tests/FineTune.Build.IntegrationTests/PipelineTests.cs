using System.Text.Json;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// The promises of the build integration, on real `dotnet build` runs of example-project copies:
/// artifacts appear, nothing re-runs without a reason, a shared cache saves retraining, only the
/// steps downstream of a change re-run, and the same inputs give byte-identical GGUF files.
/// </summary>
[Collection("pipeline")]
public sealed class PipelineTests
{
    private static readonly string[] TrainingSteps = ["FineTuneFormat", "FineTuneTokenize", "FineTuneTrain", "FineTuneExport"];

    [Fact]
    public void Fresh_clone_builds_every_artifact_and_a_second_build_reruns_nothing()
    {
        using var clone = ModelProjectSandbox.CreateFromExample();
        var first = clone.Dotnet("build");
        Assert.True(first.Succeeded, first.ToString());

        var output = clone.OutputDir;
        string[] expected = ["tweet-caps-1.0.0.Q8_0.gguf", "tweet-caps-1.0.0.F16.gguf", "Modelfile", "model-manifest.json", "report.html"];
        foreach (var file in expected)
            Assert.True(File.Exists(Path.Combine(output, file)), $"{file} missing in {output}:\n{first}");

        // The manifest records what the build produced, with the real hashes.
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "model-manifest.json")));
        Assert.Equal("tweet-caps", manifest.RootElement.GetProperty("name").GetString());
        Assert.Equal("1.0.0", manifest.RootElement.GetProperty("version").GetString());
        var outputs = manifest.RootElement.GetProperty("outputs").EnumerateArray()
            .ToDictionary(o => o.GetProperty("path").GetString()!, o => o.GetProperty("sha256").GetString());
        foreach (var gguf in clone.Ggufs())
            Assert.Equal(ModelProjectSandbox.Sha256(gguf), outputs[Path.GetFileName(gguf)]);
        Assert.Contains(manifest.RootElement.GetProperty("inputs").EnumerateArray(), i => i.GetProperty("path").GetString() == "data/tweets.jsonl");
        Assert.Equal(4, manifest.RootElement.GetProperty("hyperparameters").GetProperty("max_steps").GetInt32());

        // The Modelfile serves the first quantization with the chat template's stop token.
        var modelfile = File.ReadAllText(Path.Combine(output, "Modelfile"));
        Assert.Contains("FROM ./tweet-caps-1.0.0.Q8_0.gguf", modelfile);
        Assert.Contains("<|eot_id|>", modelfile);

        var second = clone.Dotnet("build");
        Assert.True(second.Succeeded, second.ToString());
        foreach (var step in TrainingSteps.Append("FineTuneModelfile").Append("FineTuneManifest"))
        {
            Assert.False(second.Ran(step), $"{step} re-ran:\n{second}");
            Assert.True(second.UpToDate(step), $"{step} did not say it is up to date:\n{second}");
        }
    }

    [Fact]
    public void Shared_cache_restores_without_training_and_only_changed_steps_rerun()
    {
        using var first = ModelProjectSandbox.CreateFromExample();
        Assert.True(first.Dotnet("build").Succeeded);

        // A fresh clone (new folder, new timestamps) with the cache directory copied in.
        using var clone = ModelProjectSandbox.CreateFromExample();
        ModelProjectSandbox.CopyAll(first.CacheDir, clone.CacheDir);
        var restored = clone.Dotnet("build");
        Assert.True(restored.Succeeded, restored.ToString());
        foreach (var step in TrainingSteps)
            Assert.False(restored.Ran(step), $"{step} re-ran despite the cache:\n{restored}");
        Assert.Equal(first.Ggufs().Select(ModelProjectSandbox.Sha256), clone.Ggufs().Select(ModelProjectSandbox.Sha256));

        // Only the Modelfile depends on SystemPrompt.
        clone.SetProperty("SystemPrompt", "You are TweetCaps 2. Shout in tweets.");
        var prompt = clone.Dotnet("build");
        Assert.True(prompt.Succeeded, prompt.ToString());
        foreach (var step in TrainingSteps)
            Assert.False(prompt.Ran(step), $"{step} re-ran after a SystemPrompt change:\n{prompt}");
        Assert.True(prompt.Ran("FineTuneModelfile"), prompt.ToString());
        Assert.Contains("You are TweetCaps 2. Shout in tweets.", File.ReadAllText(Path.Combine(clone.OutputDir, "Modelfile")));

        // One dataset line changed: everything from formatting to export runs again, and says why.
        clone.EditFile("data/tweets.jsonl", text => text.Replace("I LOVE", "I ADORE"));
        var edited = clone.Dotnet("build");
        Assert.True(edited.Succeeded, edited.ToString());
        foreach (var step in TrainingSteps)
            Assert.True(edited.Ran(step), $"{step} did not re-run after a dataset edit:\n{edited}");
        Assert.Contains(edited.StepLines("FineTuneFormat"), l => l.Contains("data/tweets.jsonl changed", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_fresh_clones_with_empty_caches_produce_byte_identical_gguf_files()
    {
        using var a = ModelProjectSandbox.CreateFromExample();
        using var b = ModelProjectSandbox.CreateFromExample();
        var ra = a.Dotnet("build");
        var rb = b.Dotnet("build");
        Assert.True(ra.Succeeded, ra.ToString());
        Assert.True(rb.Succeeded, rb.ToString());
        Assert.Equal(2, a.Ggufs().Length);
        Assert.Equal(a.Ggufs().Select(Path.GetFileName), b.Ggufs().Select(Path.GetFileName));
        Assert.Equal(a.Ggufs().Select(ModelProjectSandbox.Sha256), b.Ggufs().Select(ModelProjectSandbox.Sha256));

        // dotnet clean removes the artifacts but keeps the cache, so the next build restores them.
        var clean = a.Dotnet("clean");
        Assert.True(clean.Succeeded, clean.ToString());
        Assert.Empty(a.Ggufs());
        Assert.False(File.Exists(Path.Combine(a.OutputDir, "Modelfile")));
        Assert.True(Directory.Exists(a.CacheDir));
        var rebuilt = a.Dotnet("build");
        Assert.True(rebuilt.Succeeded, rebuilt.ToString());
        Assert.False(rebuilt.Ran("FineTuneTrain"), rebuilt.ToString());
        Assert.Equal(2, a.Ggufs().Length);
    }
}
