using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;
using FineTune.Ollama.Publishing;
using FineTune.Ollama.TestServer;

namespace FineTune.Ollama.Tests.Publishing;

public class OllamaPublisherTests
{
    private static readonly OllamaClientOptions Fast = new() { RetryDelay = TimeSpan.FromMilliseconds(50), RequestTimeout = TimeSpan.FromSeconds(10) };

    private static async Task<(PublishResult Result, List<string> Log)> Publish(OllamaTestServer server, string modelfile, string name = "tweet-caps:1.0.0",
        bool latest = false, OllamaClientOptions? options = null)
    {
        var log = new List<string>();
        using var client = new OllamaClient(new Uri(server.BaseUrl), options ?? Fast);
        var result = await new OllamaPublisher(client, log.Add).PublishAsync(modelfile, OllamaModelName.Parse(name), latest);
        return (result, log);
    }

    [Fact]
    public async Task Publishes_the_gguf_blob_and_a_create_request_with_everything_in_the_Modelfile()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        var (result, log) = await Publish(server, fixture.WriteModelfile());

        var digest = PublishFixture.Sha256Sum(fixture.GgufPath);
        Assert.Equal([digest], result.Uploaded);
        Assert.Equal(File.ReadAllBytes(fixture.GgufPath), server.Blobs[digest]);

        var create = Assert.Single(server.CreateRequests);
        Assert.Equal("tweet-caps:1.0.0", (string?)create["model"]);
        Assert.Equal(digest, (string?)create["files"]!["tweet-caps-1.0.0.Q8_0.gguf"]);
        Assert.Null(create["from"]);
        Assert.Equal(PublishFixture.Spec.Template, (string?)create["template"]);
        Assert.Equal(PublishFixture.Spec.System, (string?)create["system"]);
        Assert.Equal("MIT", (string?)create["license"]);
        var parameters = create["parameters"]!.AsObject();
        Assert.Equal(["<|start_header_id|>", "<|eot_id|>"], parameters["stop"]!.AsArray().Select(s => (string?)s));
        Assert.Equal(0.7, (double)parameters["temperature"]!);
        Assert.Equal(2048, (long)parameters["num_ctx"]!);
        Assert.Equal(System.Text.Json.JsonValueKind.Number, parameters["num_ctx"]!.GetValueKind());

        using var client = new OllamaClient(new Uri(server.BaseUrl), Fast);
        Assert.Contains("tweet-caps:1.0.0", await client.ListModelsAsync());
        Assert.Contains(log, l => l.StartsWith("uploading tweet-caps-1.0.0.Q8_0.gguf: 100%", StringComparison.Ordinal));
        Assert.Contains("ollama: success", log);
    }

    [Fact]
    public async Task A_gguf_that_is_a_relative_symlink_uploads_the_file_it_points_to()
    {
        using var fixture = new PublishFixture();
        var bytes = File.ReadAllBytes(fixture.GgufPath);
        var blob = Path.Combine(Path.GetDirectoryName(fixture.GgufPath)!, "blobs", "0123abcd");
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        File.Move(fixture.GgufPath, blob);
        File.CreateSymbolicLink(fixture.GgufPath, Path.Combine("blobs", "0123abcd"));
        Assert.True(new FileInfo(fixture.GgufPath).Length < 100, "the link's own size is that of its target path");

        await using var server = await OllamaTestServer.StartAsync();
        var (result, log) = await Publish(server, fixture.WriteModelfile());

        var digest = PublishFixture.Sha256Sum(blob);
        Assert.Equal([digest], result.Uploaded);
        Assert.Equal(bytes, server.Blobs[digest]);
        Assert.Contains(log, l => l.StartsWith("uploading tweet-caps-1.0.0.Q8_0.gguf: 100%", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Publishing_again_uploads_nothing()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        var modelfile = fixture.WriteModelfile();
        await Publish(server, modelfile);
        var posts = server.Requests.Count(r => r.Method == "POST" && r.Path.StartsWith("/api/blobs/", StringComparison.Ordinal));

        var (again, _) = await Publish(server, modelfile);

        Assert.Empty(again.Uploaded);
        Assert.Single(again.AlreadyPresent);
        Assert.Equal(posts, server.Requests.Count(r => r.Method == "POST" && r.Path.StartsWith("/api/blobs/", StringComparison.Ordinal)));
        Assert.Single(server.BlobUploads);
        Assert.Equal(2, server.CreateRequests.Count);
    }

    [Fact]
    public async Task Tag_latest_names_the_same_model_latest()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        await Publish(server, fixture.WriteModelfile(), "me/tweet-caps:1.0.0+build.5", latest: true);
        Assert.True(server.Models.ContainsKey("me/tweet-caps:1.0.0_build.5"));
        Assert.Equal(PublishFixture.Spec.System, server.Models["me/tweet-caps:latest"].System);
    }

    [Fact]
    public async Task Adapter_mode_sends_from_and_the_adapter_blob()
    {
        using var fixture = new PublishFixture();
        var adapter = Path.Combine(fixture.Root, "adapter.gguf");
        File.WriteAllBytes(adapter, PublishFixture.Gguf(5000, 3));
        await using var server = await OllamaTestServer.StartAsync();
        server.AddModel("llama3.2:1b");
        var modelfile = fixture.WriteModelfile(new ModelfileSpec { From = "llama3.2:1b", Adapter = "./adapter.gguf", System = "hi" });

        await Publish(server, modelfile);

        var create = Assert.Single(server.CreateRequests);
        Assert.Equal("llama3.2:1b", (string?)create["from"]);
        Assert.Null(create["files"]);
        Assert.Equal(PublishFixture.Sha256Sum(adapter), (string?)create["adapters"]!["adapter.gguf"]);
        Assert.Equal("llama3.2:1b", server.Models["tweet-caps:1.0.0"].From);
    }

    [Fact]
    public async Task Retries_5xx_answers_and_then_succeeds()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        server.FailNext("/api/blobs/", 2, 503);
        var log = new List<string>();
        var (result, _) = await Publish(server, fixture.WriteModelfile(), options: Fast with { Log = log.Add });
        Assert.Single(result.Uploaded);
        Assert.Equal(2, log.Count(l => l.Contains("HTTP 503", StringComparison.Ordinal)));
        Assert.Equal(2, server.Requests.Count(r => r.Status == 503));
    }

    [Fact]
    public async Task A_server_that_keeps_failing_is_FT5008_with_its_text()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        server.FailNext("/api/create", 10, 500);
        var e = await Assert.ThrowsAsync<FineTuneException>(() => Publish(server, fixture.WriteModelfile(), options: Fast with { MaxRetries = 2 }));
        Assert.Equal("FT5008", e.Code);
        Assert.Contains("injected failure 500", e.Message);
        Assert.Equal(3, server.Requests.Count(r => r.Status == 500));
    }

    [Fact]
    public async Task An_error_line_in_the_create_stream_is_FT5008_with_the_server_text()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        server.FailCreates("unsupported architecture \"gpt9\"");
        var e = await Assert.ThrowsAsync<FineTuneException>(() => Publish(server, fixture.WriteModelfile()));
        Assert.Equal("FT5008", e.Code);
        Assert.Contains("unsupported architecture \"gpt9\"", e.Message);
        Assert.Empty(server.Models);
    }

    [Fact]
    public async Task A_rejected_digest_is_FT5007()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        using var client = new OllamaClient(new Uri(server.BaseUrl), Fast);
        var wrong = "sha256:" + new string('0', 64);
        var e = await Assert.ThrowsAsync<FineTuneException>(() => client.UploadBlobAsync(fixture.GgufPath, wrong));
        Assert.Equal("FT5007", e.Code);
        Assert.Contains("digest mismatch", e.Message);
        Assert.Empty(server.Blobs);
    }

    [Fact]
    public async Task An_unreachable_host_fails_in_seconds_with_one_FT5006()
    {
        using var fixture = new PublishFixture();
        var port = FreePort();
        var log = new List<string>();
        using var client = new OllamaClient(new Uri($"http://127.0.0.1:{port}"), new OllamaClientOptions { ApiKey = "sk-secret-123", Log = log.Add });
        var watch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<FineTuneException>(() => new OllamaPublisher(client, log.Add)
            .PublishAsync(fixture.WriteModelfile(), OllamaModelName.Parse("x:1"), false));
        watch.Stop();
        Assert.Equal("FT5006", e.Code);
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("tried 4 times", e.Message);
        // Default retries: 0.5 s, 1 s, 2 s plus jitter; a hang would show as minutes.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"took {watch.Elapsed}");
        Assert.DoesNotContain("sk-secret-123", e.ToCanonicalString());
        Assert.DoesNotContain(log, l => l.Contains("sk-secret-123", StringComparison.Ordinal));
        Assert.Equal(3, log.Count(l => l.Contains("retry", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_request_without_an_answer_times_out_per_attempt_and_is_retried()
    {
        await using var server = await OllamaTestServer.StartAsync();
        server.StallNext("/api/tags", 1, TimeSpan.FromMinutes(5));
        var log = new List<string>();
        using var client = new OllamaClient(new Uri(server.BaseUrl), Fast with { RequestTimeout = TimeSpan.FromMilliseconds(300), Log = log.Add });
        Assert.Empty(await client.ListModelsAsync());
        Assert.Contains(log, l => l.Contains("no answer within 0.3s", StringComparison.Ordinal));

        server.StallNext("/api/tags", 10, TimeSpan.FromMinutes(5));
        using var impatient = new OllamaClient(new Uri(server.BaseUrl), Fast with { RequestTimeout = TimeSpan.FromMilliseconds(300), MaxRetries = 1 });
        var e = await Assert.ThrowsAsync<FineTuneException>(() => impatient.ListModelsAsync());
        Assert.Equal("FT5006", e.Code);
        Assert.Contains("no answer within 0.3s", e.Message);
    }

    [Fact]
    public async Task The_api_key_is_sent_as_a_bearer_token_and_never_printed()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync(apiKey: "sk-right-456");
        var (_, log) = await Publish(server, fixture.WriteModelfile(), options: Fast with { ApiKey = "sk-right-456" });
        Assert.All(server.Requests, r => Assert.Equal("Bearer sk-right-456", r.Authorization));
        Assert.DoesNotContain(log, l => l.Contains("sk-right-456", StringComparison.Ordinal));

        var wrong = await Assert.ThrowsAsync<FineTuneException>(() => Publish(server, fixture.ModelfilePath, options: Fast with { ApiKey = "sk-wrong-789" }));
        Assert.Equal("FT5009", wrong.Code);
        Assert.DoesNotContain("sk-wrong-789", wrong.ToCanonicalString());
        var none = await Assert.ThrowsAsync<FineTuneException>(() => Publish(server, fixture.ModelfilePath));
        Assert.Equal("FT5009", none.Code);
        Assert.Contains("OLLAMA_API_KEY", none.Message);
    }

    [Fact]
    public async Task A_missing_FROM_file_is_FT5010_at_its_line()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        var modelfile = fixture.WriteModelfile(PublishFixture.Spec with { From = "./missing.gguf" });
        var e = await Assert.ThrowsAsync<FineTuneException>(() => Publish(server, modelfile));
        Assert.Equal("FT5010", e.Code);
        Assert.Equal(2, e.Line);
        Assert.Empty(server.Requests);
    }

    [Fact]
    public async Task Several_FROM_lines_are_FT5013()
    {
        using var fixture = new PublishFixture();
        await using var server = await OllamaTestServer.StartAsync();
        File.WriteAllText(fixture.ModelfilePath, "FROM ./tweet-caps-1.0.0.Q8_0.gguf\nFROM llama3.2\n");
        var e = await Assert.ThrowsAsync<FineTuneException>(() => Publish(server, fixture.ModelfilePath));
        Assert.Equal("FT5013", e.Code);
        Assert.Equal(2, e.Line);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
