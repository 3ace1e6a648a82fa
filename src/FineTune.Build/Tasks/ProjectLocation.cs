namespace FineTune.Build.Tasks;

/// <summary>
/// Finds where a property or item is written in the project file, so an error about
/// <c>ModelVersion</c> points IDEs and CI annotations at that line rather than at the project as a whole.
/// </summary>
internal static class ProjectLocation
{
    /// <summary>1-based line and column of the first line containing <paramref name="needle"/>, or (0,0).</summary>
    public static (int Line, int Column) Find(string projectFile, string needle)
    {
        if (string.IsNullOrEmpty(projectFile) || !File.Exists(projectFile)) return (0, 0);
        var lineNo = 0;
        foreach (var line in File.ReadLines(projectFile))
        {
            lineNo++;
            var col = line.IndexOf(needle, StringComparison.Ordinal);
            if (col >= 0) return (lineNo, col + 1);
        }
        return (0, 0);
    }
}
