namespace FineTune.Build.IntegrationTests;

/// <summary>Locations in the repository the tests run from.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string ExampleProject => Path.Combine(Root, "example-project");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException("Repository root (FineTune.Build.sln) not found above " + AppContext.BaseDirectory);
    }
}
