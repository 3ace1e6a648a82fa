// Measures what publishing costs next to the simplest way to do the same work, in the same run:
//   hash:   FileDigest (streamed SHA-256) vs coreutils sha256sum on the same file;
//   upload: OllamaClient.UploadBlobAsync (retry/timeout pipeline, progress stream) vs a bare
//           HttpClient POST of a FileStream, both to a fresh in-process Ollama test server.
// Usage: ollama-publish-bench [size MiB = 64] [repetitions = 3]. One JSON line per measurement.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FineTune.Ollama.Publishing;
using FineTune.Ollama.TestServer;

var sizeMiB = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 64;
var repetitions = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
var path = Path.Combine(Path.GetTempPath(), $"ollama-bench-{Environment.ProcessId}.gguf");
var data = new byte[sizeMiB << 20];
new Random(1).NextBytes(data);
"GGUF"u8.CopyTo(data);
File.WriteAllBytes(path, data);
try
{
    var digest = await FileDigest.ComputeAsync(path);
    Report("hash", Median(repetitions, async () => await FileDigest.ComputeAsync(path)),
        Median(repetitions, () => { RunSha256Sum(path); return Task.CompletedTask; }), "sha256sum");
    Report("upload", Median(repetitions, async () =>
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var client = new OllamaClient(new Uri(server.BaseUrl));
        await client.UploadBlobAsync(path, digest, new Progress<long>());
    }), Median(repetitions, async () =>
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var http = new HttpClient();
        await using var stream = File.OpenRead(path);
        using var response = await http.PostAsync($"{server.BaseUrl}/api/blobs/{digest}", new StreamContent(stream));
        response.EnsureSuccessStatusCode();
    }), "bare HttpClient POST");
}
finally
{
    File.Delete(path);
}

void Report(string what, double seconds, double peerSeconds, string peer) =>
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["bench"] = "ollama-publish", ["what"] = what, ["size_mib"] = sizeMiB, ["repetitions"] = repetitions,
        ["seconds"] = Math.Round(seconds, 4), ["mib_per_s"] = Math.Round(sizeMiB / seconds, 1),
        ["peer"] = peer, ["peer_seconds"] = Math.Round(peerSeconds, 4), ["ratio_to_peer"] = Math.Round(seconds / peerSeconds, 3),
    }));

static double Median(int n, Func<Task> action)
{
    var times = new List<double>();
    for (var i = 0; i < n; i++)
    {
        var watch = Stopwatch.StartNew();
        action().GetAwaiter().GetResult();
        times.Add(watch.Elapsed.TotalSeconds);
    }
    times.Sort();
    return times[n / 2];
}

static void RunSha256Sum(string file)
{
    using var process = Process.Start(new ProcessStartInfo("sha256sum", [file]) { RedirectStandardOutput = true })!;
    process.StandardOutput.ReadToEnd();
    process.WaitForExit();
}
