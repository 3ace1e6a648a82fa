using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using FineTune.Ollama.TestServer;

namespace FineTune.Ollama.Tests.Publishing;

/// <summary>The test server answers as docs/api.md says, checked with a plain HttpClient.</summary>
public class OllamaTestServerTests
{
    [Fact]
    public async Task Blob_endpoints_use_the_documented_codes()
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        var data = PublishFixture.Gguf(1000, 1);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

        Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/api/blobs/{digest}"))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await http.PostAsync($"/api/blobs/{digest}", new ByteArrayContent(data))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/api/blobs/{digest}"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync($"/api/blobs/{digest}", new ByteArrayContent(data))).StatusCode);

        var other = "sha256:" + new string('a', 64);
        var mismatch = await http.PostAsync($"/api/blobs/{other}", new ByteArrayContent(data));
        Assert.Equal(HttpStatusCode.BadRequest, mismatch.StatusCode);
        Assert.Contains("digest mismatch", (string?)(await mismatch.Content.ReadFromJsonAsync<JsonObject>())!["error"]);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("/api/blobs/md5:abc", new ByteArrayContent(data))).StatusCode);
        Assert.Equal([digest], server.Blobs.Keys);
    }

    [Fact]
    public async Task Create_streams_status_lines_and_the_model_is_listed_shown_and_copied()
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        var data = PublishFixture.Gguf(1000, 2);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
        await http.PostAsync($"/api/blobs/{digest}", new ByteArrayContent(data));

        var create = await http.PostAsJsonAsync("/api/create", new { model = "m", files = new Dictionary<string, string> { ["m.gguf"] = digest }, system = "s" });
        Assert.Equal("application/x-ndjson", create.Content.Headers.ContentType!.MediaType);
        var lines = (await create.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal("success", (string?)lines[^1]["status"]);
        Assert.Contains(lines, l => (string?)l["status"] == $"using existing layer {digest}");

        var tags = await http.GetFromJsonAsync<JsonObject>("/api/tags");
        Assert.Equal("m:latest", (string?)tags!["models"]![0]!["name"]);
        var show = await http.PostAsJsonAsync("/api/show", new { model = "m:latest" });
        Assert.Equal("s", (string?)(await show.Content.ReadFromJsonAsync<JsonObject>())!["system"]);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsJsonAsync("/api/show", new { model = "nope" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync("/api/copy", new { source = "m", destination = "m:v2" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsJsonAsync("/api/copy", new { source = "nope", destination = "x" })).StatusCode);
        Assert.True(server.Models.ContainsKey("m:v2"));
    }

    [Fact]
    public async Task Create_rejects_bad_names_missing_blobs_and_files_that_are_not_GGUF()
    {
        await using var server = await OllamaTestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        var badName = await http.PostAsJsonAsync("/api/create", new { model = "bad name", files = new Dictionary<string, string> { ["m.gguf"] = "sha256:" + new string('0', 64) } });
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
        Assert.Equal("invalid model name", (string?)(await badName.Content.ReadFromJsonAsync<JsonObject>())!["error"]);

        var missing = await http.PostAsJsonAsync("/api/create", new { model = "m", files = new Dictionary<string, string> { ["m.gguf"] = "sha256:" + new string('0', 64) } });
        Assert.Contains("not found", (string?)JsonNode.Parse((await missing.Content.ReadAsStringAsync()).Trim().Split('\n')[^1])!["error"]);

        var text = "not a gguf file"u8.ToArray();
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(text));
        await http.PostAsync($"/api/blobs/{digest}", new ByteArrayContent(text));
        var notGguf = await http.PostAsJsonAsync("/api/create", new { model = "m", files = new Dictionary<string, string> { ["m.gguf"] = digest } });
        Assert.Contains("GGUF", (string?)JsonNode.Parse((await notGguf.Content.ReadAsStringAsync()).Trim().Split('\n')[^1])!["error"]);
        Assert.Empty(server.Models);
    }
}
