using FineTune.Ollama.TestServer;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// `dotnet publish -p:OllamaHost=...` against a server that follows Ollama's API: the GGUF lands
/// as a blob under its own SHA-256, the model is created with the chat template, stop tokens and
/// system prompt, publishing again uploads nothing, and every publish ends with a smoke test over
/// <c>/api/chat</c> (the test server's replies are scripted; it runs no model).
/// </summary>
[Collection("pipeline")]
public sealed class PublishTests
{
    [Fact]
    public async Task Publish_creates_the_versioned_model_and_a_second_publish_uploads_nothing()
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var clone = ModelProjectSandbox.CreateFromExample(withTinyBaseModel: true);
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

        // The smoke test asked the first held-out prompt of the Samples step, greedy and bounded.
        var chat = Assert.Single(server.ChatRequests);
        var samples = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Directory.GetFiles(clone.CacheDir, "samples.json", SearchOption.AllDirectories).Single()))!;
        Assert.Equal((string?)samples[0]!["prompt"], (string?)chat["messages"]![0]!["content"]);
        Assert.Equal(48, (int)chat["options"]!["num_predict"]!);
        Assert.Contains("smoke test: tweet-caps:1.0.0 answered", first.Output);
        var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(clone.OutputDir, "ollama-smoke-test.json")))!;
        Assert.True((bool)report["passed"]!, report.ToJsonString());

        // A server whose model never stops: the publish succeeds with warning FT5015.
        server.ScriptChat("ON AND ON", doneReason: "length");
        var uploads = server.BlobUploads.Count;
        var again = clone.Dotnet("publish", "-c", "Debug", "-p:OllamaHost=" + server.BaseUrl);
        Assert.True(again.Succeeded, again.ToString());
        Assert.Equal(uploads, server.BlobUploads.Count);
        Assert.False(again.Ran("FineTuneTrain"), again.ToString());
        Assert.Contains("warning FT5015: tweet-caps:1.0.0 did not stop within 48 tokens", again.Output);
        Assert.False((bool)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(clone.OutputDir, "ollama-smoke-test.json")))!["stopped"]!);

        var skipped = clone.Dotnet("publish", "-c", "Debug", "-p:OllamaHost=" + server.BaseUrl, "-p:OllamaSmokeTest=false");
        Assert.True(skipped.Succeeded, skipped.ToString());
        Assert.Equal(2, server.ChatRequests.Count);
    }

    [Fact]
    public void Unreachable_host_fails_with_one_clear_error_and_keeps_the_outputs()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(withTinyBaseModel: true);
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
