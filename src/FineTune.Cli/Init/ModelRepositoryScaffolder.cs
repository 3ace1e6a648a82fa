using System.Text.RegularExpressions;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;
using FineTune.Cli.Commands;
using NuGet.Versioning;

namespace FineTune.Cli.Init;

/// <summary>
/// Writes a new model repository. Checks everything before writing anything, so a refused init
/// leaves the folder exactly as it was.
/// </summary>
public static partial class ModelRepositoryScaffolder
{
    /// <summary>Creates the repository files in <paramref name="directory"/>; returns their relative paths.</summary>
    /// <param name="directory">Target folder; created when missing.</param>
    /// <param name="modelName">Model name, or null to use the folder's name.</param>
    /// <param name="baseModel">BaseModel: a project-relative folder or a Hugging Face id.</param>
    /// <param name="feed">A package feed (folder or URL) to write a nuget.config for, or null for none.</param>
    public static IReadOnlyList<string> Create(string directory, string? modelName, string baseModel, string? feed = null)
    {
        var root = Path.GetFullPath(directory);
        var name = modelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(root));
        if (!ValidName().IsMatch(name))
        {
            throw new FineTuneException("FT7002", modelName is null
                ? $"The folder name '{name}' is not a valid model name (ASCII letters, digits, '-', '_', '.', starting with a letter or digit). Pass --name."
                : $"'{name}' is not a valid model name: use ASCII letters, digits, '-', '_', '.', starting with a letter or digit.");
        }
        if (string.IsNullOrWhiteSpace(baseModel))
            throw new FineTuneException("FT7004", "--base-model must name a folder, e.g. models/base.");

        var files = ModelRepositoryTemplate.Render(new ModelRepositoryTemplate.Settings(name, PackageVersion(), baseModel.Replace('\\', '/'))).ToList();
        if (feed is not null)
            files.Add(KeyValuePair.Create(NuGetFeedConfig.FileName, NuGetFeedConfig.Render(feed, root, PackageVersion())));
        var existing = files.Select(f => f.Key).Where(p => File.Exists(Path.Combine(root, p)) || Directory.Exists(Path.Combine(root, p))).ToList();
        if (existing.Count > 0)
        {
            throw new FineTuneException("FT7003",
                $"Refusing to overwrite {string.Join(", ", existing)} in {root}. Run 'finetune init' in an empty folder or remove these files.",
                Path.Combine(root, existing[0]));
        }
        foreach (var (path, content) in files)
            AtomicFile.WriteAllText(Path.Combine(root, path), content);
        return [.. files.Select(f => f.Key)];
    }

    /// <summary>
    /// The FineTune.Build package version matching this tool: its SemVer without build metadata,
    /// which NuGet ignores when resolving anyway.
    /// </summary>
    public static string PackageVersion()
    {
        var informational = ToolVersion.Current;
        return SemanticVersion.TryParse(informational, out var v)
            ? new SemanticVersion(v.Major, v.Minor, v.Patch, v.ReleaseLabels, null).ToNormalizedString()
            : informational.Split('+')[0];
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex ValidName();
}
