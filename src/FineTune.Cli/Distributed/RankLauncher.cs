using System.Diagnostics;
using System.Runtime.InteropServices;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Distributed;

/// <summary>
/// Starts one process per local rank and supervises them. The first rank inherits the console
/// (its progress, log and errors are the run's); the others' standard output repeats the same and is
/// dropped, their error lines are passed on. A rank that exits with an error gets the others
/// stopped: they are given <c>grace</c> to notice through NCCL and say so themselves, then killed,
/// and the run ends with FT3154 naming that rank. A cancellation (Ctrl+C, the build's SIGTERM) is
/// passed to every rank as SIGTERM, so they agree on a step to stop at and rank 0 writes the checkpoint.
/// </summary>
internal static partial class RankLauncher
{
    private const int SIGTERM = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>
    /// Runs <paramref name="ranks"/> (the first is rank <paramref name="firstRank"/>) to the end. Returns
    /// normally when all exit with 0; throws <see cref="OperationCanceledException"/> when cancelled and
    /// FT3154 when a rank fails.
    /// </summary>
    public static void Run(IReadOnlyList<ProcessStartInfo> ranks, int firstRank, TimeSpan grace, CancellationToken cancellationToken, TextWriter? errors = null)
    {
        errors ??= Console.Error;
        var processes = new List<Process>();
        try
        {
            for (var i = 0; i < ranks.Count; i++)
            {
                var psi = ranks[i];
                psi.UseShellExecute = false;
                psi.RedirectStandardOutput = psi.RedirectStandardError = i > 0;
                var p = new Process { StartInfo = psi };
                if (i > 0)
                {
                    var rank = firstRank + i;
                    p.OutputDataReceived += (_, e) => { };
                    p.ErrorDataReceived += (_, e) =>
                    {
                        if (e.Data is not { Length: > 0 } line || line.Contains(": warning FT", StringComparison.Ordinal)) return;
                        lock (errors) errors.WriteLine(line.Contains(": error FT", StringComparison.Ordinal) ? line : $"[rank {rank}] {line}");
                    };
                }
                p.Start();
                if (i > 0)
                {
                    p.BeginOutputReadLine();
                    p.BeginErrorReadLine();
                }
                processes.Add(p);
            }
        }
        catch
        {
            foreach (var p in processes) Stop(p);
            throw;
        }

        (int Rank, int Code)? failure = null;
        var failedAt = DateTime.MaxValue;
        var killed = false;
        var signalled = false;
        while (processes.Any(p => !p.HasExited))
        {
            if (cancellationToken.IsCancellationRequested && !signalled)
            {
                signalled = true;
                foreach (var p in processes.Where(p => !p.HasExited)) Kill(p.Id, SIGTERM);
            }
            for (var i = 0; i < processes.Count && failure is null; i++)
                if (processes[i].HasExited && processes[i].ExitCode != 0)
                {
                    failure = (firstRank + i, processes[i].ExitCode);
                    failedAt = DateTime.UtcNow;
                }
            if (failure is not null && !killed && DateTime.UtcNow - failedAt > grace)
            {
                killed = true;
                foreach (var p in processes.Where(p => !p.HasExited)) Stop(p);
            }
            Thread.Sleep(50);
        }
        // Drain the redirected output before reporting.
        foreach (var p in processes) p.WaitForExit();
        for (var i = 0; i < processes.Count && failure is null; i++)
            if (processes[i].ExitCode != 0) failure = (firstRank + i, processes[i].ExitCode);
        var codes = processes.Select(p => p.ExitCode).ToArray();
        foreach (var p in processes) p.Dispose();

        if (failure is null) return;
        if (signalled && codes.All(c => c is 0 or CliApp.Cancelled)) throw new OperationCanceledException(cancellationToken);
        var (failedRank, code) = failure.Value;
        throw new FineTuneException("FT3154",
            $"Rank {failedRank} (GPU {failedRank - firstRank} of this host) stopped with exit code {code}; " +
            (killed ? $"the other ranks were stopped {grace.TotalSeconds:0} s later." : "the other ranks stopped too.") +
            " The first error above says why.");
    }

    private static void Stop(Process p)
    {
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }
    }

    /// <summary>
    /// A start of this same <c>finetune</c> command line (<paramref name="arguments"/>) as a rank with <paramref name="rank"/>'s
    /// environment added (and <paramref name="ncclCommId"/> across hosts).
    /// </summary>
    public static ProcessStartInfo ThisCommandAs(RankEnvironment rank, IReadOnlyList<string> arguments, string? ncclCommId)
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("The process path is unknown.");
        var psi = new ProcessStartInfo(host);
        // Under `dotnet finetune.dll` the host is dotnet and the program is the assembly.
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            psi.ArgumentList.Add(typeof(RankLauncher).Assembly.Location);
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        foreach (var (k, v) in rank.ToVariables()) psi.Environment[k] = v;
        if (ncclCommId is not null) psi.Environment[RankEnvironment.NcclCommIdVariable] = ncclCommId;
        return psi;
    }
}
