using System.Text;

namespace FineTune.Core.Diagnostics;

/// <summary>
/// Formats diagnostics in MSBuild's canonical error format, which MSBuild's ToolTask,
/// Visual Studio, VS Code problem matchers and GitHub Actions annotations all recognise.
/// </summary>
public static class CanonicalMessage
{
    /// <summary>
    /// <c>file(line,col): error CODE: message</c>; without a file the origin is <c>finetune</c>,
    /// which MSBuild also accepts as an origin.
    /// </summary>
    public static string Format(Severity severity, string code, string message, string? file = null, int line = 0, int column = 0)
    {
        var sb = new StringBuilder();
        sb.Append(string.IsNullOrEmpty(file) ? "finetune" : file);
        if (!string.IsNullOrEmpty(file) && line > 0)
        {
            sb.Append('(').Append(line);
            if (column > 0) sb.Append(',').Append(column);
            sb.Append(')');
        }
        sb.Append(": ").Append(severity == Severity.Error ? "error " : "warning ").Append(code).Append(": ");
        // One diagnostic per line: MSBuild parses line by line, so embedded newlines would split it.
        sb.Append(message.Replace("\r", " ").Replace("\n", " "));
        return sb.ToString();
    }

    /// <summary>Writes a warning to standard output, where the MSBuild task maps it to a build warning.</summary>
    public static void Warn(string code, string message, string? file = null, int line = 0, int column = 0) =>
        Console.Out.WriteLine(Format(Severity.Warning, code, message, file, line, column));
}
