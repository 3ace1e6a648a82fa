using System.Text.Json;
using FineTune.Hub.TestServer;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// <c>&lt;BaseModel&gt;org/name&lt;/BaseModel&gt;</c> through real `dotnet build`, against the hub test
/// server (HF_ENDPOINT) with a cache of the test's own (HF_HUB_CACHE).
/// </summary>
[Collection("pipeline")]
public sealed class HubBaseModelTests
{
    private const string Id = "tiny-org/Tiny-Llama-3";

    /// <summary>Publishes the tiny Llama model (real Llama-3 tokenizer) under <see cref="Id"/>.</summary>
    internal static string PublishTinyModel(HubTestServer hub, string scratch)
    {
        var folder = Path.Combine(scratch, "tiny-model");
        TinyBaseModel.Write(folder, scratch);
        var files = Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        files["README.md"] = "# Tiny Llama 3\n"u8.ToArray();
        return hub.Publish(Id, files!);
    }

    [Fact]
    public async Task A_base_model_by_hub_id_builds_from_the_cache_and_offline_too()
    {
        await using var hub = await HubTestServer.StartAsync();
        using var clone = ModelProjectSandbox.CreateFromExample(withTinyBaseModel: true);
        var commit = PublishTinyModel(hub, clone.Root);
        var cache = Path.Combine(clone.Root, "hf-cache");
        clone.Environment["HF_ENDPOINT"] = hub.Endpoint;
        clone.Environment["HF_HUB_CACHE"] = cache;
        clone.SetProperty("BaseModel", Id);

        var first = clone.Dotnet("build");
        Assert.True(first.Succeeded, first.ToString());
        Assert.Contains("downloading model.safetensors: 100% (", first.Output);
        Assert.Equal(2, clone.Ggufs().Length);
        var snapshot = Path.Combine(cache, "models--tiny-org--Tiny-Llama-3", "snapshots", commit);
        Assert.NotNull(new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);
        using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(clone.OutputDir, "model-manifest.json"))))
        {
            var baseModel = manifest.RootElement.GetProperty("base_model");
            Assert.Equal(Id, baseModel.GetProperty("hub_id").GetString());
            Assert.Equal(commit, baseModel.GetProperty("commit").GetString());
            Assert.Contains(baseModel.GetProperty("files").EnumerateArray(), f => f.GetProperty("path").GetString() == "model.safetensors");
        }

        // Nothing changed: every step is up to date and only the revision was asked for.
        var requests = hub.Requests.Count;
        var second = clone.Dotnet("build");
        Assert.True(second.Succeeded, second.ToString());
        foreach (var step in new[] { "FineTuneFormat", "FineTuneTokenize", "FineTuneTrain", "FineTuneManifest" })
            Assert.True(second.UpToDate(step), $"{step} not up to date:\n{second}");
        Assert.Equal(["/api/models/tiny-org/Tiny-Llama-3/revision/main"], hub.Requests.Skip(requests).Select(r => r.Path));

        // Offline, the cache alone serves the build.
        requests = hub.Requests.Count;
        clone.Environment["HF_HUB_OFFLINE"] = "1";
        var offline = clone.Dotnet("build");
        Assert.True(offline.Succeeded, offline.ToString());
        Assert.True(offline.UpToDate("FineTuneTrain"), offline.ToString());
        Assert.Equal(requests, hub.Requests.Count);

        // Another project naming the same id downloads nothing.
        using var other = ModelProjectSandbox.CreateFromExample(withTinyBaseModel: true);
        other.Environment["HF_ENDPOINT"] = hub.Endpoint;
        other.Environment["HF_HUB_CACHE"] = cache;
        other.SetProperty("BaseModel", Id);
        requests = hub.Requests.Count;
        var otherBuild = other.Dotnet("build");
        Assert.True(otherBuild.Succeeded, otherBuild.ToString());
        Assert.DoesNotContain(hub.Requests.Skip(requests), r => r.Path.Contains("/resolve/") || r.Path.StartsWith("/lfs/"));
    }

    [Fact]
    public async Task Offline_without_the_model_in_the_cache_fails_with_FT3047()
    {
        await using var hub = await HubTestServer.StartAsync();
        using var clone = ModelProjectSandbox.CreateFromExample(withTinyBaseModel: true);
        clone.Environment["HF_ENDPOINT"] = hub.Endpoint;
        clone.Environment["HF_HUB_CACHE"] = Path.Combine(clone.Root, "empty-cache");
        clone.Environment["HF_HUB_OFFLINE"] = "1";
        clone.SetProperty("BaseModel", Id);
        var build = clone.Dotnet("build");
        Assert.False(build.Succeeded, build.ToString());
        Assert.Contains("error FT3047: HF_HUB_OFFLINE=1 and the cache", build.Output);
        Assert.Empty(hub.Requests);
    }
}
