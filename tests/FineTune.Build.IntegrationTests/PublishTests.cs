using FineTune.Ollama.TestServer;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// `dotnet publish -p:OllamaHost=...` against a server that follows Ollama's API: the GGUF lands
/// as a blob under its own SHA-256, the model is created with the chat template, stop tokens and
/// system prompt, and publishing again uploads nothing.
/// </summary>
[Collection("pipeline")]
public sealed class PublishTests
{
    [Fact]
    public async Task Publish_creates_the_versioned_model_and_a_second_publish_uploads_nothing()
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var clone = ModelProjectSandbox.CreateFromExample();
        // `dotnet publish` defaults to Release; Debug keeps the artifacts where OutputDir looks.

        var first = clone.Dotnet("publish", "-c", "Debug", "-p:OllamaHost=" + server.BaseUrl);
        Assert.True(first.Succeeded, first.ToString());

        var gguf = Path.Combine(clone.OutputDir, "tweet-caps-1.0.0.Q8_0.gguf");
        var digest = "sha256:" + ModelProjectSandbox.Sha256(gguf);
        Assert.True(server.Blobs.ContainsKey(digest), $"blob {digest} not uploaded; have {string.Join(", ", server.Blobs.Keys)}");
        Assert.True(server.Models.TryGetValue("tweet-caps:1.0.0", out var model), "models: " + string.Join(", ", server.Models.Keys));
        Assert.Equal(digest, model!.Files.Values.Single());
        Assert.Contains("<|start_header_id|>", model.Template);
        Assert.StartsWith("You are TweetCaps.", model.System);
        var stops = model.Parameters!["stop"]!.AsArray().Select(s => s!.GetValue<string>()).ToArray();
        Assert.Contains("<|eot_id|>", stops);

        var uploads = server.BlobUploads.Count;
        var again = clone.Dotnet("publish", "-c", "Debug", "-p:OllamaHost=" + server.BaseUrl);
        Assert.True(again.Succeeded, again.ToString());
        Assert.Equal(uploads, server.BlobUploads.Count);
        Assert.False(again.Ran("FineTuneTrain"), again.ToString());
    }

    [Fact]
    public void Unreachable_host_fails_with_one_clear_error_and_keeps_the_outputs()
    {
        using var clone = ModelProjectSandbox.CreateFromExample();
        Assert.True(clone.Dotnet("build").Succeeded);
        var started = DateTime.UtcNow;
        var result = clone.Dotnet("publish", "-c", "Debug", "-p:OllamaHost=http://127.0.0.1:9");
        Assert.False(result.Succeeded, result.ToString());
        Assert.Single(result.Output.Split('\n').Where(l => l.Contains("error FT5", StringComparison.Ordinal)).Distinct());
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromMinutes(2), "publishing to a closed port took too long");
        Assert.Equal(2, clone.Ggufs().Length);
        Assert.True(File.Exists(Path.Combine(clone.OutputDir, "Modelfile")));
    }
}
