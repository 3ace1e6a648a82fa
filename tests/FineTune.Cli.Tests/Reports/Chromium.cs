using System.Diagnostics;

namespace FineTune.Cli.Tests.Reports;

/// <summary>Headless Chromium (Debian's <c>chromium</c> package), the oracle that the report really renders.</summary>
internal static class Chromium
{
    public static string Executable()
    {
        foreach (var name in new[] { "chromium", "chromium-browser", "google-chrome" })
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        throw new InvalidOperationException("Chromium is not installed: the report test renders report.html in it. Install it with 'apt-get install -y chromium' (.ci/run does this).");
    }

    /// <summary>Runs Chromium headless on <paramref name="file"/> with the extra arguments; returns its standard output.</summary>
    public static string Run(string file, params string[] arguments)
    {
        var profile = Path.Combine(Path.GetTempPath(), "finetune-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        try
        {
            var psi = new ProcessStartInfo(Executable())
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--hide-scrollbars", $"--user-data-dir={profile}" })
                psi.ArgumentList.Add(a);
            foreach (var a in arguments) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(new Uri(file).AbsoluteUri);
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("Chromium did not finish within 120 s.");
            }
            if (process.ExitCode != 0) throw new InvalidOperationException($"Chromium exited with {process.ExitCode}: {stderr.Result}");
            return stdout.Result;
        }
        finally
        {
            try { Directory.Delete(profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
