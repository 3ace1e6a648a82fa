using System.Diagnostics;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Ollama.Tests.Publishing;

/// <summary>A temporary folder with a small GGUF-looking file and a Modelfile that names it.</summary>
internal sealed class PublishFixture : IDisposable
{
    public PublishFixture(int size = 300_000, int seed = 7)
    {
        Directory.CreateDirectory(Root);
        GgufPath = Path.Combine(Root, "tweet-caps-1.0.0.Q8_0.gguf");
        File.WriteAllBytes(GgufPath, Gguf(size, seed));
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "ft-publish-" + Guid.NewGuid().ToString("N"));

    public string GgufPath { get; }

    public string ModelfilePath => Path.Combine(Root, "Modelfile");

    public static readonly ModelfileSpec Spec = new()
    {
        From = "./tweet-caps-1.0.0.Q8_0.gguf",
        Template = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ .Prompt }}",
        Stops = ["<|start_header_id|>", "<|eot_id|>"],
        System = "You answer in CAPS. Quote like \"\"\"this\"\"\".",
        Parameters = [KeyValuePair.Create("temperature", "0.7"), KeyValuePair.Create("num_ctx", "2048")],
        License = "MIT",
    };

    public string WriteModelfile(ModelfileSpec? spec = null)
    {
        ModelfileWriter.WriteFile(ModelfilePath, spec ?? Spec);
        return ModelfilePath;
    }

    /// <summary>"GGUF", version 3, then seeded random bytes: enough for the server's format check.</summary>
    public static byte[] Gguf(int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        "GGUF"u8.CopyTo(bytes);
        BitConverter.GetBytes(3u).CopyTo(bytes, 4);
        return bytes;
    }

    /// <summary>SHA-256 by coreutils' sha256sum: an implementation independent of the one under test.</summary>
    public static string Sha256Sum(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("sha256sum", [path]) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return "sha256:" + output.Split(' ')[0];
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
