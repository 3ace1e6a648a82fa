using System.Text.RegularExpressions;

namespace FineTune.Core.Tests;

/// <summary>
/// Every FTnnnn code the tools can print is listed in docs/errors.md with its fix, once: a user who
/// searches the code in the docs must find it.
/// </summary>
public partial class ErrorCatalogTests
{
    [Fact]
    public void Every_code_in_the_sources_and_targets_is_documented_exactly_once()
    {
        var root = RepoRoot();
        var documented = DocRow().Matches(File.ReadAllText(Path.Combine(root, "docs", "errors.md"))).Select(m => m.Groups[1].Value).ToList();
        var duplicates = documented.GroupBy(c => c).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, "listed more than once in docs/errors.md: " + string.Join(", ", duplicates));

        var used = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".targets", StringComparison.Ordinal) || f.EndsWith(".props", StringComparison.Ordinal))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(f => CodeLiteral().Matches(File.ReadAllText(f)).Select(m => (Code: m.Groups[1].Value, File: Path.GetRelativePath(root, f))))
            .ToList();
        Assert.NotEmpty(used);
        var missing = used.Where(u => !documented.Contains(u.Code)).Select(u => $"{u.Code} ({u.File})").Distinct().ToList();
        Assert.True(missing.Count == 0, "not in docs/errors.md: " + string.Join(", ", missing));
    }

    // A code as the tools write it: in a string literal ("FT1234") or in MSBuild text (FT1234:).
    [GeneratedRegex(@"[""'\s(]?(FT\d{4})(?=[""':\s])")]
    private static partial Regex CodeLiteral();

    [GeneratedRegex(@"^\| (FT\d{4}) \|", RegexOptions.Multiline)]
    private static partial Regex DocRow();

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException("FineTune.Build.sln not found above " + AppContext.BaseDirectory);
    }
}
