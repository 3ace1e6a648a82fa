using System.Diagnostics;
using FineTune.Cli.Distributed;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Tests.Distributed;

/// <summary>
/// The launcher's supervision of rank processes, with small shell scripts as ranks: a rank that
/// fails stops the others (no hang) and the error names it; a cancellation reaches every rank.
/// </summary>
public class RankLauncherTests
{
    private static ProcessStartInfo Shell(string script)
    {
        var psi = new ProcessStartInfo("/bin/sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        return psi;
    }

    [Fact]
    public void Ranks_that_all_succeed_end_the_run_normally()
    {
        RankLauncher.Run([Shell("exit 0"), Shell("sleep 0.2; exit 0")], 0, TimeSpan.FromSeconds(1), CancellationToken.None, new StringWriter());
    }

    [Fact]
    public void A_rank_that_fails_stops_the_others_and_is_named_in_FT3154()
    {
        using var dir = new TempDir();
        var survivor = dir.File("survivor-finished");
        var errors = new StringWriter();
        // Rank 0 would run for 10 minutes; rank 1 fails at once. The launcher must not wait for rank 0.
        var e = Assert.Throws<FineTuneException>(() => RankLauncher.Run(
            [Shell($"sleep 600; touch '{survivor}'"), Shell("echo 'model.py(1,1): error FT3151: rank 1 saw it' >&2; echo 'a stack line' >&2; exit 3")],
            4, TimeSpan.FromSeconds(1), CancellationToken.None, errors));
        Assert.Equal("FT3154", e.Code);
        Assert.StartsWith("Rank 5 (GPU 1 of this host) stopped with exit code 3; the other ranks were stopped 1 s later.", e.Message);
        Assert.False(File.Exists(survivor));
        var lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // Canonical lines pass unchanged (MSBuild shows them as errors); other lines say which rank wrote them.
        Assert.Equal(["model.py(1,1): error FT3151: rank 1 saw it", "[rank 5] a stack line"], lines);
    }

    [Fact]
    public void Cancelling_sends_sigterm_to_every_rank_and_waits_for_their_clean_stop()
    {
        using var dir = new TempDir();
        using var cts = new CancellationTokenSource();
        // Each rank writes a file when asked to stop (as a trainer writes its checkpoint), then exits 130.
        ProcessStartInfo Rank(int r) => Shell($"trap \"touch '{dir.File($"stopped-{r}")}'; exit 130\" TERM; touch '{dir.File($"started-{r}")}'; while true; do sleep 0.05; done");
        var run = Task.Run(() => RankLauncher.Run([Rank(0), Rank(1)], 0, TimeSpan.FromSeconds(30), cts.Token, new StringWriter()));
        while (!File.Exists(dir.File("started-0")) || !File.Exists(dir.File("started-1"))) Thread.Sleep(20);
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => run.GetAwaiter().GetResult());
        Assert.True(File.Exists(dir.File("stopped-0")) && File.Exists(dir.File("stopped-1")));
    }
}
