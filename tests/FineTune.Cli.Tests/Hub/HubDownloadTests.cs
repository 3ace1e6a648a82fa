using System.Text;
using FineTune.Cli.Hub;
using FineTune.Core.Diagnostics;
using FineTune.Hub.TestServer;

namespace FineTune.Cli.Tests.Hub;

/// <summary>
/// Base models by id against a hub test server that follows the real API: the cache layout
/// huggingface_hub uses, hashes checked, resumed transfers, tokens kept on the hub's host, and one
/// error code per cause.
/// </summary>
public sealed class HubDownloadTests : IAsyncLifetime
{
    private const string Repo = "tiny-org/Tiny-Llama";
    private const string Config = """
        {"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":64,"hidden_size":16,"intermediate_size":32,
         "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-05,"rope_theta":500000.0,"torch_dtype":"bfloat16"}
        """;

    private readonly TempDir _dir = new();
    private HubTestServer _hub = null!;
    private readonly List<string> _log = [];

    private static readonly byte[] Weights = Bytes(6000, 1);
    private static readonly byte[] Tokenizer = Encoding.UTF8.GetBytes("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}" + new string(' ', 2000));

    private static byte[] Bytes(int n, int seed)
    {
        var data = new byte[n];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static Dictionary<string, byte[]> ModelFiles(string config = Config, byte[]? weights = null) => new()
    {
        ["config.json"] = Encoding.UTF8.GetBytes(config),
        ["generation_config.json"] = "{\"eos_token_id\":1}"u8.ToArray(),
        ["tokenizer.json"] = Tokenizer,
        ["model.safetensors"] = weights ?? Weights,
        ["README.md"] = "# tiny\n"u8.ToArray(),
        ["original/consolidated.00.pth"] = Bytes(3000, 9),
    };

    public async Task InitializeAsync() => _hub = await HubTestServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _dir.Dispose();
    }

    private HubSettings Settings(string? token = null, bool offline = false, string? endpoint = null) =>
        new(new Uri((endpoint ?? _hub.Endpoint) + "/"), _dir.File("hub"), token, offline);

    private Task<ResolvedModel> Resolve(string id, HubSettings? settings = null) =>
        new HubDownloader(settings ?? Settings(), _log.Add).ResolveAsync(HubModelId.Parse(id), CancellationToken.None);

    private string RepoFolder => _dir.File("hub/models--tiny-org--Tiny-Llama");

    [Fact]
    public async Task Downloads_only_what_training_needs_into_the_standard_cache_layout()
    {
        var commit = _hub.Publish(Repo, ModelFiles());
        var model = await Resolve(Repo);

        Assert.Equal(commit, model.Commit);
        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit), model.Snapshot);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")));
        Assert.Equal(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"],
            Directory.GetFileSystemEntries(model.Snapshot).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // Each snapshot file is a relative link to blobs/<etag>: the SHA-256 for LFS files, the git blob hash for small ones.
        Assert.Equal($"../../blobs/{HubTestServer.Sha256(Weights)}", new FileInfo(Path.Combine(model.Snapshot, "model.safetensors")).LinkTarget);
        Assert.Equal($"../../blobs/{HubTestServer.GitBlobSha1(Encoding.UTF8.GetBytes(Config))}", new FileInfo(Path.Combine(model.Snapshot, "config.json")).LinkTarget);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(model.Snapshot, "model.safetensors")));
        Assert.DoesNotContain(_hub.Requests, r => r.Path.Contains("README") || r.Path.Contains(".pth"));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
        Assert.Contains(_log, l => l.StartsWith("downloading model.safetensors: 100% (", StringComparison.Ordinal) && l.Contains("/s, eta "));
    }

    [Fact]
    public async Task A_tokenizer_by_id_fetches_the_tokenizer_files_only_and_then_works_offline()
    {
        var files = ModelFiles();
        files["tokenizer_config.json"] = "{\"bos_token\":\"<s>\"}"u8.ToArray();
        var commit = _hub.Publish(Repo, files);
        var downloader = new HubDownloader(Settings(), _log.Add);
        var tokenizer = await downloader.ResolveTokenizerAsync(HubModelId.Parse(Repo), CancellationToken.None);

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit), tokenizer.Snapshot);
        Assert.Equal(["tokenizer.json", "tokenizer_config.json"], tokenizer.Downloaded.Order(StringComparer.Ordinal));
        Assert.Equal(Tokenizer, File.ReadAllBytes(Path.Combine(tokenizer.Snapshot, "tokenizer.json")));
        // No weights and no config: a tokenizer for a tiny model needs none of the gigabytes.
        Assert.DoesNotContain(_hub.Requests, r => r.Path.EndsWith("/model.safetensors", StringComparison.Ordinal) || r.Path.EndsWith("/config.json", StringComparison.Ordinal)
            || r.Path.StartsWith("/lfs/" + HubTestServer.Sha256(Weights), StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(tokenizer.Snapshot, "model.safetensors")));

        var before = _hub.Requests.Count;
        var offline = await new HubDownloader(Settings(offline: true), _log.Add).ResolveTokenizerAsync(HubModelId.Parse(Repo), CancellationToken.None);
        Assert.Equal(tokenizer.Snapshot, offline.Snapshot);
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public async Task A_tokenizer_by_id_without_tokenizer_json_is_FT7017_and_an_uncached_one_offline_FT3047()
    {
        var files = ModelFiles();
        files.Remove("tokenizer.json");
        _hub.Publish(Repo, files);
        var e = await Assert.ThrowsAsync<FineTuneException>(() =>
            new HubDownloader(Settings(), _log.Add).ResolveTokenizerAsync(HubModelId.Parse(Repo), CancellationToken.None));
        Assert.Equal("FT7017", e.Code);
        var offline = await Assert.ThrowsAsync<FineTuneException>(() =>
            new HubDownloader(Settings(offline: true), _log.Add).ResolveTokenizerAsync(HubModelId.Parse("tiny-org/Other"), CancellationToken.None));
        Assert.Equal(HubErrors.NotCachedOffline, offline.Code);
    }

    [Fact]
    public async Task A_second_project_with_the_same_id_downloads_nothing()
    {
        _hub.Publish(Repo, ModelFiles());
        var first = await Resolve(Repo);
        var before = _hub.Requests.Count;
        var second = await Resolve(Repo);
        Assert.Equal(first.Snapshot, second.Snapshot);
        Assert.Empty(second.Downloaded);
        // Only the revision is asked for: files at a commit never change.
        Assert.Equal(["/api/models/tiny-org/Tiny-Llama/revision/main"], _hub.Requests.Skip(before).Select(r => r.Path));
    }

    [Fact]
    public async Task A_corrupted_blob_is_detected_by_its_hash_and_fetched_again()
    {
        _hub.Publish(Repo, ModelFiles());
        var model = await Resolve(Repo);
        var blob = Path.Combine(RepoFolder, "blobs", HubTestServer.Sha256(Weights));
        var bytes = File.ReadAllBytes(blob);
        bytes[100] ^= 0xff;
        File.WriteAllBytes(blob, bytes);

        var again = await Resolve(Repo);
        Assert.Equal(["model.safetensors"], again.Downloaded);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(model.Snapshot, "model.safetensors")));
        Assert.Contains(_log, l => l.Contains("does not match its hash", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_broken_transfer_resumes_with_a_range_request()
    {
        _hub.Publish(Repo, ModelFiles());
        _hub.BreakNextDownload(HubTestServer.Sha256(Weights), 2500);
        var model = await Resolve(Repo);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(model.Snapshot, "model.safetensors")));
        var storage = _hub.Requests.Where(r => r.Path.StartsWith("/lfs/" + HubTestServer.Sha256(Weights), StringComparison.Ordinal)).ToList();
        Assert.Equal([null, "bytes=2500-"], storage.Select(r => r.Range));
        Assert.Contains(_log, l => l == "model.safetensors: resuming at 2500 of 6000 bytes.");
    }

    [Fact]
    public async Task A_gated_model_needs_the_token_which_goes_to_the_hub_only_and_is_never_printed()
    {
        const string token = "hf_testTokenThatMustNotLeak";
        _hub.Publish(Repo, ModelFiles(), gatedToken: token);
        var e = await Assert.ThrowsAsync<FineTuneException>(() => Resolve(Repo));
        Assert.Equal(HubErrors.Gated, e.Code);
        Assert.Contains($"{_hub.Endpoint}/{Repo}", e.Message);
        Assert.Contains("HF_TOKEN", e.Message);

        var model = await Resolve(Repo, Settings(token));
        Assert.True(File.Exists(Path.Combine(model.Snapshot, "model.safetensors")));
        var hubRequests = _hub.Requests.Where(r => r.Host.StartsWith("127.0.0.1", StringComparison.Ordinal)).ToList();
        Assert.Contains(hubRequests, r => r.Authorization == "Bearer " + token);
        // The LFS redirect goes to another host: the token stays behind.
        var storage = _hub.Requests.Where(r => r.Host.StartsWith("127.0.0.2", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(storage);
        Assert.All(storage, r => Assert.Null(r.Authorization));
        Assert.DoesNotContain(_log, l => l.Contains(token, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_failure_has_its_own_code_and_names_the_fix()
    {
        _hub.Publish(Repo, ModelFiles());
        _hub.Publish("tiny-org/pickles", new Dictionary<string, byte[]> { ["config.json"] = Encoding.UTF8.GetBytes(Config), ["pytorch_model.bin"] = Bytes(2000, 3) });
        _hub.Publish("tiny-org/gpt2", ModelFiles(Config.Replace("\"llama\"", "\"gpt2\"")));

        async Task<FineTuneException> Fails(string id, HubSettings? settings = null) => await Assert.ThrowsAsync<FineTuneException>(() => Resolve(id, settings));
        var missing = await Fails("tiny-org/does-not-exist");
        Assert.Equal(HubErrors.RepoNotFound, missing.Code);
        Assert.Contains("HF_TOKEN", missing.Message);
        Assert.Equal(HubErrors.RevisionNotFound, (await Fails(Repo + "@v9")).Code);
        var pickles = await Fails("tiny-org/pickles");
        Assert.Equal(HubErrors.PickleOnly, pickles.Code);
        Assert.Contains("pytorch_model.bin", pickles.Message);
        var gpt2 = await Fails("tiny-org/gpt2");
        Assert.Equal("FT3015", gpt2.Code);
        Assert.DoesNotContain(_hub.Requests, r => r.Path.Contains("gpt2/resolve/") && r.Path.EndsWith(".safetensors", StringComparison.Ordinal));
        Assert.Equal(HubErrors.Unreachable, (await Fails(Repo, Settings(endpoint: "http://127.0.0.1:9"))).Code);
        Assert.Equal(HubErrors.InvalidId, Assert.Throws<FineTuneException>(() => HubModelId.Parse("not an id")).Code);
    }

    [Fact]
    public async Task Offline_mode_uses_the_cache_alone_and_fails_clearly_without_it()
    {
        _hub.Publish(Repo, ModelFiles());
        var offline = await Assert.ThrowsAsync<FineTuneException>(() => Resolve(Repo, Settings(offline: true)));
        Assert.Equal(HubErrors.NotCachedOffline, offline.Code);
        Assert.Contains("HF_HUB_OFFLINE", offline.Message);
        Assert.Empty(_hub.Requests);

        var online = await Resolve(Repo);
        var before = _hub.Requests.Count;
        var cached = await Resolve(Repo, Settings(offline: true));
        Assert.Equal(online.Commit, cached.Commit);
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public async Task A_new_commit_of_main_with_the_same_weights_fetches_only_what_changed()
    {
        var first = _hub.Publish(Repo, ModelFiles());
        await Resolve(Repo);
        var before = _hub.Requests.Count;
        var files = ModelFiles();
        files["generation_config.json"] = "{\"eos_token_id\":2}"u8.ToArray();
        var second = _hub.Publish(Repo, files);
        var model = await Resolve(Repo);
        Assert.NotEqual(first, second);
        Assert.Equal(second, model.Commit);
        Assert.Equal(["generation_config.json"], model.Downloaded);
        Assert.DoesNotContain(_hub.Requests.Skip(before), r => r.Path.StartsWith("/lfs/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pinned_revision_resolves_to_that_commit()
    {
        var first = _hub.Publish(Repo, ModelFiles());
        _hub.Publish(Repo, ModelFiles(weights: Bytes(5000, 7)));
        var model = await Resolve($"{Repo}@{first}");
        Assert.Equal(first, model.Commit);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(model.Snapshot, "model.safetensors")));
    }

    [Fact]
    public void The_cache_and_token_come_from_the_variables_huggingface_hub_reads()
    {
        Dictionary<string, string?> env = new() { ["HF_HOME"] = _dir.File("hf-home") };
        Directory.CreateDirectory(_dir.File("hf-home"));
        File.WriteAllText(_dir.File("hf-home/token"), "hf_fromTokenFile\n");
        var fromHome = HubSettings.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal(_dir.File("hf-home/hub"), fromHome.CacheRoot);
        Assert.Equal("hf_fromTokenFile", fromHome.Token);
        Assert.Equal(new Uri("https://huggingface.co/"), fromHome.Endpoint);
        Assert.False(fromHome.Offline);

        env["HF_HUB_CACHE"] = _dir.File("elsewhere");
        env["HF_TOKEN"] = "hf_fromVariable";
        env["HF_ENDPOINT"] = "http://mirror.example:8080/";
        env["HF_HUB_OFFLINE"] = "1";
        var set = HubSettings.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal((_dir.File("elsewhere"), "hf_fromVariable", new Uri("http://mirror.example:8080/"), true), (set.CacheRoot, set.Token, set.Endpoint, set.Offline));
        Assert.EndsWith(Path.Combine(".cache", "huggingface", "hub"), HubSettings.FromEnvironment(_ => null).CacheRoot);
    }
}
