using System.Diagnostics;
using System.Text;
using System.Text.Json;
using FineTune.Tokenizers;

// Encode throughput (MB/s of UTF-8 input) of FineTune.Tokenizers against Hugging Face's Rust
// `tokenizers` in the same process (NuGet Tokenizers.DotNet 1.4.1, which wraps it) on text neither has
// seen: every measured pass is a fresh tokenizer encoding each document once, after a JIT warm-up on
// other text, so word caches start empty as they do for a dataset. With --js also @lenml/tokenizers
// (node, after npm ci) on the repeated mix it was measured on before.
// Prints JSON lines: one per implementation and tokenizer, then the ratio.

var root = FindRoot();
const int passes = 3;
var withJs = args.Contains("--js");
var documents = UnseenDocuments(root, targetBytes: 4_000_000);
var warmup = string.Join("\n", documents.Take(20)); // JIT only; the measured documents come after it
documents = documents.Skip(20).ToList();
var documentsFile = Path.Combine(Path.GetTempPath(), $"ft-tokenizer-bench-{Environment.ProcessId}.json");
File.WriteAllText(documentsFile, JsonSerializer.Serialize(documents));
var bytes = documents.Sum(d => (long)Encoding.UTF8.GetByteCount(d));
try
{
    foreach (var name in new[] { "llama3", "qwen3", "llama2" })
    {
        var dir = Path.Combine(root, "node_modules", "@lenml", $"tokenizer-{name}", "models");
        // Best of `passes` cold passes: a fresh instance each time, warmed on other text.
        // Process CPU seconds of the best pass beside its wall time: about equal when the encoder uses one thread.
        (double Seconds, long Tokens, double CpuSeconds) Measure(Func<Func<string, long>> fresh)
        {
            var best = double.MaxValue;
            var bestCpu = 0.0;
            long tokens = 0;
            for (var i = 0; i < passes; i++)
            {
                var encode = fresh();
                encode(warmup);
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                tokens = 0;
                foreach (var d in documents) tokens += encode(d);
                var seconds = sw.Elapsed.TotalSeconds;
                if (seconds < best) (best, bestCpu) = (seconds, (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds);
            }
            return (best, tokens, bestCpu);
        }
        var ours = Measure(() =>
        {
            var t = Tokenizer.Load(dir);
            return d => t.Encode(d).Count;
        });
        var hf = Measure(() =>
        {
            var t = new Tokenizers.DotNet.Tokenizer(Path.Combine(dir, "tokenizer.json"));
            return d => t.Encode(d).Length;
        });
        Console.WriteLine(JsonSerializer.Serialize(new { bench = "tokenizer.encode", tokenizer = name, impl = "FineTune.Tokenizers", text = "unseen", runtime = Environment.Version.ToString(), bytes, tokens = ours.Tokens, seconds = ours.Seconds, cpu_seconds = ours.CpuSeconds, mb_per_s = bytes / 1e6 / ours.Seconds }));
        Console.WriteLine(JsonSerializer.Serialize(new { bench = "tokenizer.encode", tokenizer = name, impl = "Tokenizers.DotNet 1.4.1 (HF tokenizers, Rust)", text = "unseen", bytes, tokens = hf.Tokens, seconds = hf.Seconds, cpu_seconds = hf.CpuSeconds, mb_per_s = bytes / 1e6 / hf.Seconds }));
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "tokenizer.encode.ratio", tokenizer = name, speedup_vs_hf_tokenizers = hf.Seconds / ours.Seconds,
            // Tokenizers.DotNet's Encode always adds the special tokens (BOS), one per document at most.
            token_count_difference = hf.Tokens - ours.Tokens, documents = documents.Count,
        }));
        if (!withJs) continue;
        var js = RunJsPeer(root, name, documentsFile, passes);
        Console.WriteLine(js.GetRawText());
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "tokenizer.encode.ratio", tokenizer = name, speedup_vs_js = js.GetProperty("seconds").GetDouble() / ours.Seconds,
        }));
    }
}
finally
{
    File.Delete(documentsFile);
}
return 0;

static JsonElement RunJsPeer(string root, string name, string documentsFile, int passes)
{
    var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, UseShellExecute = false };
    foreach (var a in new[] { Path.Combine(root, "bench", "tokenizer", "js-peer.mjs"), root, name, documentsFile, passes.ToString() })
        psi.ArgumentList.Add(a);
    using var p = Process.Start(psi) ?? throw new InvalidOperationException("node did not start");
    var output = p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"js-peer.mjs exited with {p.ExitCode}");
    return JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.Clone();
}

static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
    throw new InvalidOperationException("Run from inside the repository.");
}

// Documents of a few KB cut at line ends, taken in turn from source code, Markdown and the
// multilingual fixture corpus until the target size or until every source is used up (no text
// repeats); deterministic so runs are comparable.
static List<string> UnseenDocuments(string root, long targetBytes)
{
    var sources = new List<string>
    {
        File.ReadAllText(Path.Combine(root, "node_modules", "@lenml", "tokenizers", "src", "tokenizers", "tokenizers.js")),
        string.Join("\n", Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories).Order().Select(File.ReadAllText)),
        string.Join("\n\n", Directory.EnumerateFiles(Path.Combine(root, "node_modules"), "*.md", SearchOption.AllDirectories).Order().Take(200).Select(File.ReadAllText)),
    };
    using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "eng", "tokenizer-fixtures", "llama3.json"))))
        sources.Add(string.Join("\n", doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString())));

    var documents = new List<string>();
    long total = 0;
    var cursor = new int[sources.Count];
    var done = new bool[sources.Count];
    for (var k = 0; total < targetBytes && done.Contains(false); k = (k + 1) % sources.Count)
    {
        if (done[k]) continue;
        var s = sources[k];
        var start = cursor[k];
        var end = Math.Min(s.Length, start + 4096);
        var nl = s.IndexOf('\n', end);
        end = nl < 0 ? s.Length : nl + 1;
        var d = s[start..end];
        cursor[k] = end;
        done[k] = end >= s.Length;
        if (d.Length == 0) continue;
        documents.Add(d);
        total += Encoding.UTF8.GetByteCount(d);
    }
    return documents;
}
