using System.Diagnostics;
using System.Text;

namespace FineTune.Cli.Tests.Chat;

/// <summary>
/// Runs a command on a pseudo-terminal through script(1) from util-linux, and types into it the way
/// a person does: each line only once the program shows its prompt. (Typing ahead before the program
/// has set up its terminal can lose the Ctrl+D.)
/// </summary>
internal sealed class PseudoTerminal : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Task _reader;

    public PseudoTerminal(string command)
    {
        var psi = new ProcessStartInfo("script") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-qec", command, "/dev/null" }) psi.ArgumentList.Add(a);
        // A terminal always comes with TERM; .NET's console reads it to handle keys such as Ctrl+D.
        psi.Environment["TERM"] = "xterm";
        _process = Process.Start(psi)!;
        _reader = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await _process.StandardOutput.ReadAsync(buffer)) > 0)
                lock (_output) _output.Append(buffer, 0, n);
        });
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Waits until <paramref name="text"/> has appeared <paramref name="count"/> times.</summary>
    public void WaitFor(string text, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Occurrences(Output, text) < count)
        {
            if (_process.HasExited && _reader.IsCompleted && Occurrences(Output, text) < count)
                throw new InvalidOperationException($"exited before showing '{text}' {count} times: {Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"'{text}' did not appear {count} times: {Output}");
            Thread.Sleep(50);
        }
    }

    public void Type(string keys)
    {
        _process.StandardInput.Write(keys);
        _process.StandardInput.Flush();
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) throw new TimeoutException($"did not exit: {Output}");
        _reader.Wait(timeout);
        return _process.ExitCode;
    }

    private static int Occurrences(string s, string text)
    {
        var count = 0;
        for (var i = s.IndexOf(text, StringComparison.Ordinal); i >= 0; i = s.IndexOf(text, i + text.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
