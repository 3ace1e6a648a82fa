namespace FineTune.Build.IntegrationTests;

/// <summary>Locations in the repository the tests run from.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string ExampleProject => Path.Combine(Root, "example-project");

    /// <summary>The CLI the model builds run (built with this test project).</summary>
    public static string CliDll => Path.Combine(Root, "src", "FineTune.Cli", "bin", "Debug", "net10.0", "finetune.dll");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException("Repository root (FineTune.Build.sln) not found above " + AppContext.BaseDirectory);
    }
}
