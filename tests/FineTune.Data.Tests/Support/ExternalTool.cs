using System.Diagnostics;

namespace FineTune.Data.Tests.Support;

/// <summary>Runs an external oracle (node, go) with stdin/stdout, failing clearly when it is missing.</summary>
internal static class ExternalTool
{
    public static string Run(string fileName, IEnumerable<string> arguments, string? stdin, string workingDirectory, string installHint)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"'{fileName}' is required by this test but could not be started ({e.Message}). {installHint}", e);
        }
        using (process)
        {
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            if (stdin is not null) process.StandardInput.Write(stdin);
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish in 3 minutes.");
            }
            var stdout = stdoutTask.GetAwaiter().GetResult();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} exited with {process.ExitCode}: {stderrTask.GetAwaiter().GetResult()}");
            return stdout;
        }
    }
}
