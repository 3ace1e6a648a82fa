using FineTune.Data.Templates;
using FineTune.Ollama.Modelfiles;
using FineTune.Ollama.TestServer;
using FineTune.Ollama.Tests.Publishing;

namespace FineTune.Ollama.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class ModelfileCommandTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ft-modelfile-cli-" + Guid.NewGuid().ToString("N"));

    public ModelfileCommandTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public async Task Writes_template_stops_system_parameters_and_license()
    {
        var license = Path.Combine(dir, "LICENSE.txt");
        File.WriteAllText(license, "Apache License 2.0\n\n\"\"\"quoted\"\"\" terms\n");
        var output = Path.Combine(dir, "out", "Modelfile");
        var system = "You are \"Caps\".\nAnswer in CAPS. 🦙";

        var (exit, _, error) = await Finetune.RunAsync("modelfile", "--gguf", "tweet-caps-1.0.0.Q8_0.gguf", "--chat-template", "llama-3",
            "--system", system, "--parameter", "temperature=0.7", "--parameter=num_ctx=4096", "--parameter", "stop=User:",
            "--license", license, "--out", output);

        Assert.True(exit == 0, error);
        var template = ChatTemplates.Resolve("llama-3", dir);
        var modelfile = ModelfileParser.ParseFile(output);
        Assert.Equal(["./tweet-caps-1.0.0.Q8_0.gguf"], modelfile.Froms);
        Assert.Equal(template.OllamaTemplate, modelfile.Template);
        Assert.Equal(template.StopTokens.Append("User:"), modelfile.Parameters.Where(p => p.Key == "stop").Select(p => p.Value));
        Assert.Equal(template.StopTokens.Count + 1, File.ReadAllLines(output).Count(l => l.StartsWith("PARAMETER stop ", StringComparison.Ordinal)));
        Assert.Equal(system, modelfile.System);
        Assert.Equal([File.ReadAllText(license)], modelfile.Licenses);
        Assert.Equal([KeyValuePair.Create("temperature", "0.7"), KeyValuePair.Create("num_ctx", "4096")], modelfile.Parameters.Where(p => p.Key != "stop"));
    }

    [Fact]
    public async Task Adapter_mode_writes_FROM_the_base_and_ADAPTER()
    {
        var output = Path.Combine(dir, "Modelfile");
        var (exit, _, error) = await Finetune.RunAsync("modelfile", "--from", "llama3.2:1b", "--adapter", Path.Combine(dir, "lora.gguf"),
            "--chat-template", "chatml", "--out", output);
        Assert.True(exit == 0, error);
        var modelfile = ModelfileParser.ParseFile(output);
        Assert.Equal(["llama3.2:1b"], modelfile.Froms);
        Assert.Equal("./lora.gguf", modelfile.Adapter);
    }

    [Theory]
    [InlineData("FT5013")]
    [InlineData("FT5013", "--gguf", "a.gguf", "--from", "llama3.2")]
    [InlineData("FT5003", "--gguf", "a.gguf", "--parameter", "temperature")]
    [InlineData("FT5003", "--gguf", "a.gguf", "--parameter", "temprature=1")]
    [InlineData("FT5010", "--gguf", "a.gguf", "--license", "no-such-license.txt")]
    public async Task Bad_input_is_one_FT_error_and_no_Modelfile(string code, params string[] args)
    {
        var output = Path.Combine(dir, "Modelfile");
        var (exit, _, error) = await Finetune.RunAsync(["modelfile", "--chat-template", "llama-3", "--out", output, .. args]);
        Assert.Equal(1, exit);
        Assert.Contains($"error {code}:", error);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task What_modelfile_writes_publish_sends()
    {
        var gguf = Path.Combine(dir, "m-1.0.0.Q8_0.gguf");
        File.WriteAllBytes(gguf, PublishFixture.Gguf(10_000, 5));
        var output = Path.Combine(dir, "Modelfile");
        Assert.Equal(0, (await Finetune.RunAsync("modelfile", "--gguf", "m-1.0.0.Q8_0.gguf", "--chat-template", "qwen-2.5",
            "--system", "Be brief.", "--parameter", "top_k=20", "--out", output)).Exit);
        await using var server = await OllamaTestServer.StartAsync();

        var (exit, _, error) = await Finetune.RunAsync("publish", "--host", server.BaseUrl, "--modelfile", output, "--model", "m:1.0.0");

        Assert.True(exit == 0, error);
        var template = ChatTemplates.Resolve("qwen-2.5", dir);
        var create = Assert.Single(server.CreateRequests);
        Assert.Equal(template.OllamaTemplate, (string?)create["template"]);
        Assert.Equal(template.StopTokens, create["parameters"]!["stop"]!.AsArray().Select(s => (string?)s));
        Assert.Equal(20, (long)create["parameters"]!["top_k"]!);
        Assert.Equal("Be brief.", (string?)create["system"]);
        Assert.Equal(PublishFixture.Sha256Sum(gguf), (string?)create["files"]!["m-1.0.0.Q8_0.gguf"]);
    }
}
