using System.Diagnostics;
using System.Text.Json.Nodes;
using FineTune.Ollama.Publishing;
using FineTune.Ollama.TestServer;

namespace FineTune.Ollama.Tests.Publishing;

/// <summary>
/// <c>/api/show</c> lists parameters the way Ollama's Go server prints them (<c>%-30s %#v</c>): the
/// oracle is Go itself (eng/ollamashow), so both our reader and the test server's writer are checked
/// against what a real server sends for stop strings with quotes, escapes and non-ASCII text.
/// </summary>
public class ShownParametersTests
{
    private static readonly string[] TrickyStops =
    [
        "<|eot_id|>", "<|start_header_id|>", "a \"quoted\" \\ stop\n\t", "é ü 中文 😀", "\u00a0nbsp\u200bzwsp", "\u0001\u007f", "### Response:",
    ];

    private static JsonObject Parameters() => new()
    {
        ["stop"] = new JsonArray(TrickyStops.Select(s => (JsonNode)s).ToArray()),
        ["temperature"] = 0.7,
        ["num_ctx"] = 4096,
    };

    [Fact]
    public void Reads_back_every_stop_string_from_what_Go_prints()
    {
        var shown = ShownParameters.Parse(GoShow(Parameters()));
        Assert.Equal(TrickyStops, ShownParameters.Values(shown, "stop"));
        Assert.Equal(["0.7"], ShownParameters.Values(shown, "temperature"));
        Assert.Equal(["4096"], ShownParameters.Values(shown, "num_ctx"));
    }

    [Fact]
    public async Task The_test_server_lists_parameters_exactly_as_Ollama_does()
    {
        await using var server = await OllamaTestServer.StartAsync();
        using (var fixture = new PublishFixture())
        {
            using var client = new OllamaClient(new Uri(server.BaseUrl));
            var digest = PublishFixture.Sha256Sum(fixture.GgufPath);
            await client.UploadBlobAsync(fixture.GgufPath, digest);
            await client.CreateAsync(new JsonObject
            {
                ["model"] = "shown:1",
                ["files"] = new JsonObject { ["m.gguf"] = digest },
                ["parameters"] = Parameters(),
            }, _ => { });
            var shown = (string?)(await client.ShowAsync("shown:1"))!["parameters"];
            // Ollama's order is a Go map's (random); the lines themselves must be Go's.
            Assert.Equal(GoShow(Parameters()).Split('\n').Order(StringComparer.Ordinal), shown!.Split('\n').Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [InlineData("\"\\q\"")]
    [InlineData("\"abc")]
    [InlineData("\"\\u12\"")]
    public void A_malformed_quoted_value_is_refused(string quoted) =>
        Assert.Throws<FormatException>(() => ShownParameters.GoUnquote(quoted));

    private static string GoShow(JsonObject parameters)
    {
        var dir = Path.Combine(RepoRoot(), "eng", "ollamashow");
        var psi = new ProcessStartInfo("go", ["run", "."])
        {
            WorkingDirectory = dir, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("go could not be started (install golang-go; .ci/run does)");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(parameters.ToJsonString());
        process.StandardInput.Close();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "go run eng/ollamashow did not finish");
        Assert.True(process.ExitCode == 0, "go run eng/ollamashow failed: " + stderr.Result);
        return stdout.Result;
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FineTune.Build.sln"))) return dir.FullName;
        throw new InvalidOperationException("FineTune.Build.sln not found above " + AppContext.BaseDirectory);
    }
}
