using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// `finetune chat` on what a build made, the way docs/cli.md shows it: greedy replies to a held-out
/// prompt of the build's quality gate, from the project and from a GGUF file alone.
/// </summary>
internal static class GgufChatReplies
{
    /// <summary>The gate's first held-out prompt with its replies (quality.json), and the project's system prompt.</summary>
    public static (string Prompt, string System, JsonElement Replies) FirstGateReply(ModelProjectSandbox clone)
    {
        var quality = Directory.GetFiles(Path.Combine(clone.CacheDir, "gguf-check"), "quality.json", SearchOption.AllDirectories).Single();
        using var json = JsonDocument.Parse(File.ReadAllText(quality));
        var first = json.RootElement.GetProperty("replies")[0].Clone();
        var system = Regex.Match(File.ReadAllText(clone.ProjectFile), "<SystemPrompt>(.*)</SystemPrompt>").Groups[1].Value;
        return (first.GetProperty("prompt").GetString()!, system, first);
    }

    /// <summary>The gate's reply for the GGUF of <paramref name="quantization"/>: its weights, the project's tokenizer and template.</summary>
    public static string GateReply(JsonElement replies, string quantization) =>
        replies.GetProperty("quantized").EnumerateArray().Single(r => r.GetProperty("quantization").GetString() == quantization).GetProperty("text").GetString()!;

    /// <summary>`finetune chat &lt;target&gt; --prompt` at temperature 0: the reply (stdout; what was loaded and why it stopped go to stderr).</summary>
    public static string Chat(ModelProjectSandbox clone, string target, string system, string prompt)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = clone.ProjectDir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { RepoPaths.CliDll, "chat", target, "--system", system, "--prompt", prompt, "--temperature", "0", "--max-tokens", "48" })
            psi.ArgumentList.Add(a);
        ModelProjectSandbox.SetBuildEnvironment(psi);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"finetune chat {target} exited with {process.ExitCode}:\n{stdout}{stderr.Result}");
        return stdout.TrimEnd('\n');
    }
}
