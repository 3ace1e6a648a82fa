namespace FineTune.Build.IntegrationTests;

/// <summary>
/// One example project built once with a short training run; the cache-integrity tests copy its
/// cache instead of training again, and compare their outputs with its outputs (a clean build).
/// </summary>
public sealed class TrainedExampleFixture : IDisposable
{
    /// <summary>Enough steps to kill training after its first checkpoint (save_steps is 2).</summary>
    public const int MaxSteps = 8;

    internal ModelProjectSandbox Trained { get; }

    public TrainedExampleFixture()
    {
        Trained = ModelProjectSandbox.CreateFromExample(maxSteps: MaxSteps, withTinyBaseModel: true);
        // A progress line per step, so a test can act while training runs.
        Trained.SetLoraValue("logging_steps", "1");
        var build = Trained.Dotnet("build");
        if (!build.Succeeded) throw new InvalidOperationException("The example did not build:\n" + build);
    }

    /// <summary>A fresh copy of the example with the same lora.yaml and a copy of the trained cache.</summary>
    internal ModelProjectSandbox CopyWithCache()
    {
        var clone = ModelProjectSandbox.CreateFromExample(maxSteps: null, withTinyBaseModel: true);
        File.Copy(Path.Combine(Trained.ProjectDir, "lora.yaml"), Path.Combine(clone.ProjectDir, "lora.yaml"), overwrite: true);
        ModelProjectSandbox.CopyAll(Trained.CacheDir, clone.CacheDir);
        return clone;
    }

    /// <summary>The one complete entry of a step in a cache (not a temp, damaged or checkpoint folder).</summary>
    internal static string Entry(string cacheDir, string step) =>
        Directory.GetDirectories(Path.Combine(cacheDir, step)).Single(d => !Path.GetFileName(d).Contains('.'));

    /// <summary>What a user takes from bin/: every GGUF and the Modelfile (report and manifest also hold timings).</summary>
    internal static string[] Deliverables(ModelProjectSandbox sandbox) =>
        [.. sandbox.Ggufs(), Path.Combine(sandbox.OutputDir, "Modelfile")];

    internal void AssertSameDeliverables(ModelProjectSandbox other, string context)
    {
        var expected = Deliverables(Trained);
        var actual = Deliverables(other);
        Assert.Equal(expected.Select(Path.GetFileName), actual.Select(Path.GetFileName));
        for (var i = 0; i < expected.Length; i++)
            Assert.True(File.ReadAllBytes(expected[i]).AsSpan().SequenceEqual(File.ReadAllBytes(actual[i])),
                $"{Path.GetFileName(actual[i])} differs from a clean build's:\n{context}");
    }

    public void Dispose() => Trained.Dispose();
}
