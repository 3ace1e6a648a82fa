using System.Text;

namespace FineTune.Build.IntegrationTests.Docs;

/// <summary>
/// Runs the commands of a documented shell block one by one, as a user's shell would: <c>cd</c>
/// changes the folder for the next command, <c>dotnet</c> is the SDK and any other command is looked
/// up on this shell's PATH (a tool installed into a tool path is found there). The only changes made
/// to a command are the named substitutions a test declares (a local server for localhost, a temporary
/// folder for one the user would keep), each applied to whole arguments.
/// </summary>
internal sealed class DocShell(string workingDirectory)
{
    private readonly List<(string From, string[] To)> _substitutions = [];

    public string WorkingDirectory { get; private set; } = workingDirectory;

    /// <summary>Variables for every command, on top of this process's (PATH here is what commands are looked up on).</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

    /// <summary>Every command run so far, as run (after substitution), with its output.</summary>
    public List<(string Command, BuildResult Result)> History { get; } = [];

    /// <summary>Replaces the argument <paramref name="from"/> (exactly, or as the value of <c>-p:X=</c>/<c>--x=</c>) with <paramref name="to"/>.</summary>
    public DocShell Substitute(string from, params string[] to)
    {
        _substitutions.Add((from, to));
        return this;
    }

    /// <summary>Runs one command line of the block; a failing command fails the test with its output.</summary>
    public BuildResult Run(string commandLine)
    {
        var args = Split(commandLine).SelectMany(Substitute).ToList();
        if (args[0] == "cd")
        {
            var target = Path.GetFullPath(Path.Combine(WorkingDirectory, args[1]));
            Assert.True(Directory.Exists(target), $"cd {args[1]}: {target} does not exist");
            WorkingDirectory = target;
            var ok = new BuildResult(0, "");
            History.Add((string.Join(' ', args), ok));
            return ok;
        }
        var executable = args[0] == "dotnet" ? "dotnet" : Which(args[0]);
        var result = ModelProjectSandbox.Run(executable, args.Skip(1), WorkingDirectory, Environment);
        History.Add((string.Join(' ', args), result));
        Assert.True(result.Succeeded, $"'{commandLine}' (run as '{string.Join(' ', args)}' in {WorkingDirectory}) failed:\n{result}");
        return result;
    }

    private IEnumerable<string> Substitute(string arg)
    {
        foreach (var (from, to) in _substitutions)
        {
            if (arg == from) return to;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && arg[(eq + 1)..] == from && to.Length == 1) return [arg[..(eq + 1)] + to[0]];
        }
        return [arg];
    }

    /// <summary>The executable a shell would run for <paramref name="name"/>, from this shell's PATH.</summary>
    private string Which(string name)
    {
        var path = Environment.TryGetValue("PATH", out var p) ? p : System.Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new Xunit.Sdk.XunitException($"'{name}' is not on the PATH ({path}).");
    }

    /// <summary>Words of a command line: blanks separate them, double or single quotes group them.</summary>
    internal static List<string> Split(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in line)
        {
            if (quote is not null)
            {
                if (c == quote) quote = null;
                else word.Append(c);
            }
            else if (c is '"' or '\'') { quote = c; inWord = true; }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
            else { word.Append(c); inWord = true; }
        }
        if (quote is not null) throw new ArgumentException($"Unclosed quote in: {line}");
        if (inWord) words.Add(word.ToString());
        return words;
    }
}
