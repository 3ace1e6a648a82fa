using System.Text;

namespace FineTune.Build.Tasks;

/// <summary>
/// Quotes one argument for a command line that .NET's runtime splits back with the
/// CommandLineToArgvW rules, so values with spaces, quotes or backslashes (a system prompt)
/// arrive as exactly one argument.
/// </summary>
internal static class CommandLineQuoting
{
    public static string Quote(string arg)
    {
        if (arg.Length > 0 && arg.All(c => !char.IsWhiteSpace(c) && c != '"' && c != '\\' && c != '\''))
            return arg;
        var sb = new StringBuilder("\"");
        var backslashes = 0;
        foreach (var c in arg)
        {
            if (c == '\\') { backslashes++; continue; }
            if (c == '"') { sb.Append('\\', backslashes * 2 + 1).Append('"'); backslashes = 0; continue; }
            sb.Append('\\', backslashes).Append(c);
            backslashes = 0;
        }
        sb.Append('\\', backslashes * 2).Append('"');
        return sb.ToString();
    }
}
