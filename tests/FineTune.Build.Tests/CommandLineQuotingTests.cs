using System.Diagnostics;
using FineTune.Build.Tasks;

namespace FineTune.Build.Tests;

/// <summary>
/// ToolTask hands the CLI one command-line string; values such as a system prompt must come out
/// of the runtime's argument splitting exactly as the project wrote them.
/// </summary>
public sealed class CommandLineQuotingTests
{
    [Theory]
    [InlineData("plain")]
    [InlineData("")]
    [InlineData("two words")]
    [InlineData("say \"hi\"")]
    [InlineData(@"C:\path with space\")]
    [InlineData(@"ends with backslash\")]
    [InlineData("\\\"mixed\\\\\" quotes")]
    [InlineData("line one\nline two\ttab")]
    [InlineData("It's \"\"\"triple\"\"\" quoted; semicolons; and ünïcödé 👋")]
    public void Arguments_survive_the_round_trip_through_a_real_process(string value)
    {
        string[] args = ["--system", value, "last"];
        var received = EchoArguments(string.Join(" ", args.Select(CommandLineQuoting.Quote)));
        Assert.Equal(args, received);
    }

    // /bin/sh prints each argv entry NUL-terminated, so newlines inside values are preserved.
    private static string[] EchoArguments(string commandLineTail)
    {
        var psi = new ProcessStartInfo("/bin/sh", "-c \"printf '%s\\0' \\\"$@\\\"\" sh " + commandLineTail)
        {
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return output.Split('\0')[..^1];
    }
}
