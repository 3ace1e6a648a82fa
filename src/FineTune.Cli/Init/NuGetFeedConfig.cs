using System.Security;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Init;

/// <summary>
/// The <c>nuget.config</c> <c>finetune init --feed</c> writes: the feed FineTune.Build comes from
/// (a local folder <c>dotnet pack</c> filled, or a feed URL) and nuget.org, which serves the
/// Microsoft.Build.NoTargets SDK the project file names.
/// </summary>
public static class NuGetFeedConfig
{
    public const string FileName = "nuget.config";

    /// <summary>
    /// The file's content for a repository in <paramref name="repositoryRoot"/>. A folder is written
    /// relative to the repository (NuGet resolves it relative to nuget.config), so two clones side by
    /// side work on any machine; it must already hold the FineTune.Build package this tool references.
    /// </summary>
    public static string Render(string feed, string repositoryRoot, string packageVersion)
    {
        string value;
        if (Uri.TryCreate(feed, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp))
            value = feed;
        else
        {
            var folder = Path.GetFullPath(feed);
            var package = $"FineTune.Build.{packageVersion}.nupkg";
            if (!File.Exists(Path.Combine(folder, package)))
                throw new FineTuneException("FT7018",
                    $"The feed '{folder}' has no {package}, the FineTune.Build version this tool references. In a clone of FineTune.Build run 'dotnet pack FineTune.Build.sln -o {folder}' first.", folder);
            // GetRelativePath returns the absolute path when there is no relative one (another drive).
            value = Path.GetRelativePath(repositoryRoot, folder).Replace('\\', '/');
        }
        return $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <!-- Where packages come from: FineTune.Build (and the FineTune.Cli tool) from the feed
                   finetune init was given, everything else (Microsoft.Build.NoTargets) from nuget.org. -->
              <packageSources>
                <add key="finetune" value="{SecurityElement.Escape(value)}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
              </packageSources>
            </configuration>

            """;
    }
}
