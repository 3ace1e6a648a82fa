using System.Diagnostics;
using System.Globalization;
using FineTune.Cli.Progress;

namespace FineTune.Cli.Hub;

/// <summary>One log line per second at most while a file downloads: bytes, rate and time left.</summary>
internal sealed class DownloadProgress(string file, long size, long start, Action<string> log) : IProgress<long>
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan? _lastLine;

    public void Report(long bytes)
    {
        var now = _clock.Elapsed;
        if (bytes < size && _lastLine is { } last && now - last < TimeSpan.FromSeconds(1)) return;
        _lastLine = now;
        var rate = (bytes - start) / Math.Max(now.TotalSeconds, 1e-3);
        var eta = rate > 0 ? TimeSpan.FromSeconds((size - bytes) / rate) : TimeSpan.Zero;
        var percent = size > 0 ? bytes * 100 / size : 100;
        log(string.Create(CultureInfo.InvariantCulture,
            $"downloading {file}: {percent}% ({ProgressFormat.Bytes(bytes)} of {ProgressFormat.Bytes(size)}, {ProgressFormat.Bytes((long)rate)}/s, eta {eta:hh\\:mm\\:ss})"));
    }
}
