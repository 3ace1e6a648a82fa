using System.Net.Http.Json;
using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;
using FineTune.Ollama.Publishing;

namespace FineTune.Ollama.Tests.Publishing;

/// <summary>
/// The same client against a real Ollama (opt-in). A model is created on top of a model the server already
/// has (publishing a GGUF needs a real one, which the build integration tests cover), then deleted.
/// </summary>
public class RealOllamaTests
{
    private static OllamaClient Client() =>
        new(OllamaHost.Parse(RealOllamaFactAttribute.Host!), OllamaClientOptions.FromEnvironment() with { RequestTimeout = TimeSpan.FromMinutes(2) });

    [RealOllamaFact]
    public async Task Blobs_are_checked_by_digest()
    {
        using var fixture = new PublishFixture(size: 4096, seed: Environment.TickCount);
        using var client = Client();
        var digest = PublishFixture.Sha256Sum(fixture.GgufPath);
        Assert.False(await client.BlobExistsAsync(digest));
        await client.UploadBlobAsync(fixture.GgufPath, digest);
        Assert.True(await client.BlobExistsAsync(digest));

        File.WriteAllBytes(fixture.GgufPath, PublishFixture.Gguf(4096, Environment.TickCount + 1));
        var e = await Assert.ThrowsAsync<FineTuneException>(() => client.UploadBlobAsync(fixture.GgufPath, "sha256:" + new string('1', 64)));
        Assert.Equal("FT5007", e.Code);
    }

    [RealOllamaFact]
    public async Task A_Modelfile_on_top_of_an_existing_model_is_created_and_shown()
    {
        using var client = Client();
        var models = await client.ListModelsAsync();
        Assert.True(models.Count > 0, "the test server needs at least one model (e.g. ollama pull smollm:135m)");
        using var fixture = new PublishFixture(size: 16);
        var modelfile = fixture.WriteModelfile(new ModelfileSpec
        {
            From = models[0],
            System = "You say \"\"\"quoted\"\"\" things.\nIn two lines, with unicode: 🦙 é 世界.",
            Stops = ["<|stop|>"],
            Parameters = [KeyValuePair.Create("temperature", "0.25"), KeyValuePair.Create("num_ctx", "1024")],
        });
        var name = OllamaModelName.Parse($"finetune-test-{Guid.NewGuid():N}"[..30] + ":1.0.0+test");
        try
        {
            var result = await new OllamaPublisher(client, _ => { }).PublishAsync(modelfile, name, tagLatest: true);
            Assert.Empty(result.Uploaded);
            var shown = await client.ShowAsync(name.ToString());
            Assert.Contains("<|stop|>", (string?)shown!["parameters"]);
            Assert.Contains(name.ToString(), await client.ListModelsAsync());
        }
        finally
        {
            using var http = new HttpClient { BaseAddress = client.BaseUrl };
            foreach (var tag in new[] { name.ToString(), name.WithTag("latest").ToString() })
                await http.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "api/delete") { Content = JsonContent.Create(new { model = tag }) });
        }
    }
}
