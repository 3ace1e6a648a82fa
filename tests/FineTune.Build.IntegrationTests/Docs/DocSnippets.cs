using System.Text.RegularExpressions;

namespace FineTune.Build.IntegrationTests.Docs;

/// <summary>A fenced code block of a document, as a reader sees it: the section it sits in and its text.</summary>
internal sealed record DocSnippet(string File, int Line, string Language, string Section, string Text)
{
    public override string ToString() => $"{File}:{Line} ({Section}, {Language})";
}

/// <summary>
/// The ```xml and ```bash blocks of README.md and docs/*.md: what a user copies. Tests take the text
/// from here instead of repeating it, so a snippet edited in the docs is what gets built.
/// </summary>
internal static partial class DocSnippets
{
    /// <summary>Languages of blocks a user copies into a file or a shell; untagged blocks show output.</summary>
    public static readonly string[] CopiedLanguages = ["xml", "bash", "sh", "shell"];

    public static IReadOnlyList<DocSnippet> All() =>
        Documents().SelectMany(Parse).Where(s => CopiedLanguages.Contains(s.Language)).ToList();

    /// <summary>The one copied block of <paramref name="file"/> in section <paramref name="section"/> of that language.</summary>
    public static DocSnippet Single(string file, string section, string language)
    {
        var found = All().Where(s => s.File == file && s.Section == section && s.Language == language).ToList();
        return found.Count == 1 ? found[0]
            : throw new InvalidOperationException($"{file} section '{section}' has {found.Count} ```{language} blocks; the test expects one.");
    }

    /// <summary>The commands of a shell block, one per line, without comments and blank lines.</summary>
    public static IReadOnlyList<string> Commands(DocSnippet snippet) =>
        snippet.Text.Split('\n').Select(l => TrailingComment().Replace(l, "").Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();

    private static IEnumerable<string> Documents() =>
        new[] { Path.Combine(RepoPaths.Root, "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Root, "docs"), "*.md").Order(StringComparer.Ordinal));

    private static IEnumerable<DocSnippet> Parse(string path)
    {
        var relative = Path.GetRelativePath(RepoPaths.Root, path).Replace('\\', '/');
        var lines = File.ReadAllLines(path);
        var section = "";
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith('#') && !lines[i].StartsWith("#!")) section = lines[i].TrimStart('#').Trim();
            if (!lines[i].StartsWith("```")) continue;
            var language = lines[i][3..].Trim();
            var start = i + 1;
            var end = start;
            while (end < lines.Length && !lines[end].StartsWith("```")) end++;
            yield return new DocSnippet(relative, start, language, section, string.Join('\n', lines[start..end]) + "\n");
            i = end;
        }
    }

    // A comment after a command ("dotnet build x   # does y"); a '#' inside a word (C#) is not one.
    [GeneratedRegex(@"\s+#\s.*$")]
    private static partial Regex TrailingComment();
}
