using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;
using FineTune.Ollama.Publishing;
using FineTune.Ollama.TestServer;

namespace FineTune.Ollama.Tests.Publishing;

/// <summary>
/// After publishing, the model is asked one question over <c>/api/chat</c> as a user would; the
/// result says whether it answered, stopped at a stop token, and kept the template's text out of
/// its reply. The test server's replies are scripted (it runs no model).
/// </summary>
public class SmokeTestTests
{
    private static readonly OllamaClientOptions Fast = new() { RetryDelay = TimeSpan.FromMilliseconds(50), RequestTimeout = TimeSpan.FromSeconds(10) };

    private static async Task<(OllamaTestServer Server, Modelfile Modelfile, PublishFixture Fixture)> Published()
    {
        var fixture = new PublishFixture();
        var server = await OllamaTestServer.StartAsync();
        var path = fixture.WriteModelfile();
        using var client = new OllamaClient(new Uri(server.BaseUrl), Fast);
        await new OllamaPublisher(client, _ => { }).PublishAsync(path, OllamaModelName.Parse("tweet-caps:1.0.0"), tagLatest: false);
        return (server, ModelfileParser.ParseFile(path), fixture);
    }

    private static async Task<SmokeTestResult> Ask(OllamaTestServer server, Modelfile modelfile, string model = "tweet-caps:1.0.0")
    {
        using var client = new OllamaClient(new Uri(server.BaseUrl), Fast);
        return await new OllamaSmokeTest(client).RunAsync(model, modelfile, "What did the passenger do?", 48);
    }

    [Fact]
    public async Task Sends_one_greedy_bounded_non_streamed_user_message_and_passes_a_clean_stopped_reply()
    {
        var (server, modelfile, fixture) = await Published();
        await using var _ = server;
        using var __ = fixture;
        server.ScriptChat("THE PASSENGER SURVIVED.");

        var result = await Ask(server, modelfile);

        var request = Assert.Single(server.ChatRequests);
        Assert.Equal("tweet-caps:1.0.0", (string?)request["model"]);
        Assert.False((bool)request["stream"]!);
        var message = Assert.Single(request["messages"]!.AsArray());
        Assert.Equal("user", (string?)message!["role"]);
        Assert.Equal("What did the passenger do?", (string?)message["content"]);
        Assert.Equal(0, (double)request["options"]!["temperature"]!);
        Assert.Equal(48, (int)request["options"]!["num_predict"]!);

        Assert.Equal("THE PASSENGER SURVIVED.", result.Reply);
        Assert.True(result.Stopped);
        Assert.Empty(result.Markers);
        Assert.True(result.Passed);
    }

    [Fact]
    public async Task A_reply_cut_at_the_token_limit_fails_the_check()
    {
        var (server, modelfile, fixture) = await Published();
        await using var _ = server;
        using var __ = fixture;
        server.ScriptChat("ON AND ON AND ON", doneReason: "length");

        var result = await Ask(server, modelfile);

        Assert.False(result.Stopped);
        Assert.False(result.Passed);
        Assert.Equal("length", result.DoneReason);
    }

    [Fact]
    public async Task Template_text_in_the_reply_is_named()
    {
        var (server, modelfile, fixture) = await Published();
        await using var _ = server;
        using var __ = fixture;
        server.ScriptChat("YES<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nmore");

        var result = await Ask(server, modelfile);

        Assert.Equal(["<|start_header_id|>", "<|eot_id|>", "<|end_header_id|>"], result.Markers);
        Assert.False(result.Passed);
    }

    [Fact]
    public async Task A_model_the_server_cannot_run_is_FT5014_naming_the_model()
    {
        var (server, modelfile, fixture) = await Published();
        await using var _ = server;
        using var __ = fixture;

        var e = await Assert.ThrowsAsync<FineTuneException>(() => Ask(server, modelfile, "missing:1.0.0"));

        Assert.Equal("FT5014", e.Code);
        Assert.Contains("missing:1.0.0", e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public async Task The_result_is_written_as_json_beside_the_artifacts()
    {
        var (server, modelfile, fixture) = await Published();
        await using var _ = server;
        using var __ = fixture;
        server.ScriptChat("FINE.");
        var result = await Ask(server, modelfile);
        var path = Path.Combine(fixture.Root, "ollama-smoke-test.json");

        result.Write(path);

        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        Assert.Equal("FINE.", (string?)json["reply"]);
        Assert.Equal("stop", (string?)json["done_reason"]);
        Assert.True((bool)json["passed"]!);
        Assert.Empty(Directory.GetFiles(fixture.Root, "*.tmp*"));
    }
}
