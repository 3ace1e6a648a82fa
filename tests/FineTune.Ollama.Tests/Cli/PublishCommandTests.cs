using FineTune.Ollama.TestServer;
using FineTune.Ollama.Tests.Publishing;

namespace FineTune.Ollama.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public class PublishCommandTests
{
    [Fact]
    public async Task Publishes_with_the_key_from_the_environment_and_never_prints_it()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync(apiKey: "sk-cli-secret");
        Environment.SetEnvironmentVariable("OLLAMA_API_KEY", "sk-cli-secret");
        try
        {
            var (exit, output, error) = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", fixture.WriteModelfile(),
                "--model", "tweet-caps:1.0.0+ci.7", "--tag-latest");
            Assert.True(exit == 0, error);
            Assert.True(server.Models.ContainsKey("tweet-caps:1.0.0_ci.7"));
            Assert.True(server.Models.ContainsKey("tweet-caps:latest"));
            Assert.Contains("uploaded 1 blob(s), 0 already on the server", output);
            Assert.DoesNotContain("sk-cli-secret", output + error);

            var again = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", fixture.ModelfilePath, "--model", "tweet-caps:1.0.0+ci.7");
            Assert.Equal(0, again.Exit);
            Assert.Contains("uploaded 0 blob(s), 1 already on the server", again.Out);
        }
        finally
        {
            Environment.SetEnvironmentVariable("OLLAMA_API_KEY", null);
        }
    }

    [Fact]
    public async Task Publishing_ends_with_a_smoke_test_that_asks_the_first_held_out_prompt_and_records_the_result()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        server.ScriptChat("I AM TWEETCAPS.");
        var samples = Path.Combine(fixture.Root, "samples.json");
        File.WriteAllText(samples, """[{"prompt": "Who are you?", "before": "", "after": ""}, {"prompt": "second"}]""");
        var report = Path.Combine(fixture.Root, "ollama-smoke-test.json");

        var (exit, output, error) = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", fixture.WriteModelfile(),
            "--model", "tweet-caps:1.0.0", "--samples", samples, "--max-tokens", "32", "--smoke-report", report);

        Assert.True(exit == 0, error);
        var chat = Assert.Single(server.ChatRequests);
        Assert.Equal("Who are you?", (string?)chat["messages"]![0]!["content"]);
        Assert.Equal(32, (int)chat["options"]!["num_predict"]!);
        Assert.Contains("smoke test: tweet-caps:1.0.0 answered \"I AM TWEETCAPS.\"", output);
        Assert.Contains("ended at a stop token", output);
        Assert.DoesNotContain("warning FT", output);
        Assert.True((bool)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report))!["passed"]!);
    }

    [Fact]
    public async Task A_model_that_never_stops_is_warning_FT5015_and_smoke_test_false_skips_the_chat()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        server.ScriptChat("AND AGAIN AND AGAIN", doneReason: "length");

        var (exit, output, error) = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", fixture.WriteModelfile(), "--model", "loop:1");

        Assert.True(exit == 0, error);
        Assert.Contains("warning FT5015: loop:1 did not stop within 128 tokens (done_reason 'length')", output);

        var skipped = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", fixture.ModelfilePath, "--model", "loop:1", "--smoke-test", "false");
        Assert.Equal(0, skipped.Exit);
        Assert.Single(server.ChatRequests);
        Assert.DoesNotContain("smoke test", skipped.Out);
    }

    [Fact]
    public async Task The_host_comes_from_OLLAMA_HOST_when_not_given()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        Environment.SetEnvironmentVariable("OLLAMA_HOST", server.BaseUrl.Replace("http://", "", StringComparison.Ordinal));
        try
        {
            var (exit, _, error) = await Finetune.RunAsync("publish", "--modelfile", fixture.WriteModelfile(), "--model", "env-host:1");
            Assert.True(exit == 0, error);
            Assert.True(server.Models.ContainsKey("env-host:1"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("OLLAMA_HOST", null);
        }
    }

    [Fact]
    public async Task An_unreachable_host_is_one_canonical_FT5006_line_without_the_key()
    {
        using var fixture = new PublishFixture();
        Environment.SetEnvironmentVariable("OLLAMA_API_KEY", "sk-never-shown");
        try
        {
            var (exit, output, error) = await Finetune.RunAsync("publish", "--host", "127.0.0.1:1", "--modelfile", fixture.WriteModelfile(), "--model", "x:1");
            Assert.Equal(1, exit);
            var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("finetune: error FT5006: cannot reach Ollama at http://127.0.0.1:1", line);
            Assert.DoesNotContain("sk-never-shown", output + error);
            Assert.True(File.Exists(fixture.GgufPath) && File.Exists(fixture.ModelfilePath));
        }
        finally
        {
            Environment.SetEnvironmentVariable("OLLAMA_API_KEY", null);
        }
    }

    [Fact]
    public async Task An_invalid_model_name_is_FT5005_before_any_request()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        var (exit, _, error) = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", fixture.WriteModelfile(), "--model", "bad name:1");
        Assert.Equal(1, exit);
        Assert.Contains("error FT5005", error);
        Assert.Empty(server.Requests);
    }
}
