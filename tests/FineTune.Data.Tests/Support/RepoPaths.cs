namespace FineTune.Data.Tests.Support;

/// <summary>Locates the repository checkout the tests run from (for eng/ scripts and node_modules).</summary>
internal static class RepoPaths
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException($"FineTune.Build.sln not found above {AppContext.BaseDirectory}.");
    }

    public static string Combine(params string[] parts) => Path.Combine([Root, .. parts]);
}
