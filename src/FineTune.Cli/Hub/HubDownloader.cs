using System.Globalization;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Cli.Hub;

/// <summary>A hub model resolved to a commit, with every file it needs in the cache.</summary>
internal sealed record ResolvedModel(HubModelId Id, string Commit, string Snapshot, IReadOnlyList<string> Downloaded);

/// <summary>
/// Brings a model id to a snapshot folder in the hub cache: the revision resolved to a commit, each
/// needed file checked against the hash the hub announces (cached blobs too: a corrupted one is
/// fetched again), written under a temporary name and renamed, resumed with a Range request when a
/// transfer breaks. Offline (HF_HUB_OFFLINE=1) only the cache is used.
/// </summary>
internal sealed class HubDownloader(HubSettings settings, Action<string> log)
{
    private const int TransferAttempts = 5;

    public async Task<ResolvedModel> ResolveAsync(HubModelId id, CancellationToken ct)
    {
        var cache = new HubCache(settings.CacheRoot, id);
        if (settings.Offline) return Offline(id, cache);
        using var client = new HubClient(settings);
        RevisionInfo info;
        try
        {
            info = await client.RevisionAsync(id, ct);
        }
        catch (FineTuneException e) when (e.Code == HubErrors.Unreachable && Cached(id, cache) is { } cached)
        {
            log($"warning: {e.Message.Split(" (")[0]}; using {id} at commit {cached.Commit} from the cache.");
            return cached;
        }
        var (metadata, index, weights) = ModelFiles.Select(id, info.Files);
        var verified = new VerifiedBlobs(cache.RepoFolder);
        var downloaded = new List<string>();
        async Task Fetch(string file)
        {
            if (await FetchAsync(client, cache, verified, id, info.Commit, file, ct)) downloaded.Add(file);
        }
        foreach (var file in metadata) await Fetch(file);
        var snapshot = cache.Snapshot(info.Commit);
        // The architecture is checked before gigabytes of weights are fetched.
        ModelConfig.Load(snapshot);
        if (index is not null)
        {
            await Fetch(index);
            weights = Shards(Path.Combine(snapshot, index));
        }
        foreach (var file in weights) await Fetch(file);
        verified.Save();
        cache.SetRef(id.Revision, info.Commit);
        return new ResolvedModel(id, info.Commit, snapshot, downloaded);
    }

    /// <summary>
    /// Only the tokenizer files of <paramref name="id"/> (tokenizer.json and, when the repository has
    /// them, tokenizer_config.json, special_tokens_map.json and the chat template), into the same cache:
    /// for <c>new-tiny-model --tokenizer org/name</c>, which needs no weights.
    /// </summary>
    public async Task<ResolvedModel> ResolveTokenizerAsync(HubModelId id, CancellationToken ct)
    {
        var cache = new HubCache(settings.CacheRoot, id);
        if (settings.Offline || await TryRevisionAsync(id, ct) is not { } info)
        {
            return cache.CommitOf(id.Revision) is { } commit && File.Exists(Path.Combine(cache.Snapshot(commit), "tokenizer.json"))
                ? new ResolvedModel(id, commit, cache.Snapshot(commit), [])
                : throw new FineTuneException(HubErrors.NotCachedOffline,
                    $"{(settings.Offline ? "HF_HUB_OFFLINE=1" : "The hub is unreachable")} and the cache ({settings.CacheRoot}) has no tokenizer.json of {id}. Unset HF_HUB_OFFLINE, or point HF_HUB_CACHE at a cache that has it.");
        }
        if (!info.Files.Contains("tokenizer.json"))
            throw new FineTuneException("FT7017",
                $"{id} has no tokenizer.json (a fast tokenizer file) at commit {info.Commit}; only tokenizer.json is read. Use a repository that has one (most transformers models do).");
        using var client = new HubClient(settings);
        var verified = new VerifiedBlobs(cache.RepoFolder);
        var downloaded = new List<string>();
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja" }.Where(info.Files.Contains))
            if (await FetchAsync(client, cache, verified, id, info.Commit, file, ct)) downloaded.Add(file);
        verified.Save();
        cache.SetRef(id.Revision, info.Commit);
        return new ResolvedModel(id, info.Commit, cache.Snapshot(info.Commit), downloaded);
    }

    /// <summary>The revision's commit and files, or null when the host cannot be reached (the cache may still serve).</summary>
    private async Task<RevisionInfo?> TryRevisionAsync(HubModelId id, CancellationToken ct)
    {
        using var client = new HubClient(settings);
        try
        {
            return await client.RevisionAsync(id, ct);
        }
        catch (FineTuneException e) when (e.Code == HubErrors.Unreachable && new HubCache(settings.CacheRoot, id).CommitOf(id.Revision) is not null)
        {
            log($"warning: {e.Message.Split(" (")[0]}; using the cached tokenizer of {id}.");
            return null;
        }
    }

    /// <summary>Returns true when the file was downloaded, false when the cache already had it.</summary>
    private async Task<bool> FetchAsync(HubClient client, HubCache cache, VerifiedBlobs verified, HubModelId id, string commit, string file, CancellationToken ct)
    {
        var link = new FileInfo(Path.Combine(cache.Snapshot(commit), file));
        // A file at a commit never changes: a link to a blob that still holds its hash needs no request.
        if (link.LinkTarget is { } target && File.Exists(link.FullName) && verified.Check(Path.GetFullPath(target, link.DirectoryName!)))
            return false;
        var meta = await client.HeadAsync(id, commit, file, ct);
        var blob = cache.Blob(meta.Etag);
        if (File.Exists(blob))
        {
            if (verified.Check(blob, meta.Size))
            {
                cache.Link(commit, file, meta.Etag);
                return false;
            }
            log($"{file}: the cached copy does not match its hash {meta.Etag}; fetching it again.");
            File.Delete(blob);
        }
        for (var attempt = 1; ; attempt++)
        {
            var partial = blob + ".incomplete";
            await TransferAsync(client, id, meta, file, partial, ct);
            if (BlobCheck.Matches(partial, meta.Etag, meta.Size))
            {
                File.Move(partial, blob, overwrite: true);
                verified.Record(blob);
                break;
            }
            File.Delete(partial);
            if (attempt == 2)
                throw new FineTuneException(HubErrors.HashMismatch,
                    $"{id}/{file} arrived twice with bytes that do not match the hub's hash {meta.Etag} ({meta.Size} bytes); a proxy or mirror (HF_ENDPOINT) is altering it.");
            log($"{file}: the download does not match its hash {meta.Etag}; fetching it again.");
        }
        cache.Link(commit, file, meta.Etag);
        return true;
    }

    /// <summary>Fills <paramref name="partial"/> to the announced size, resuming with Range requests after broken transfers.</summary>
    private async Task TransferAsync(HubClient client, HubModelId id, HubFileMetadata meta, string file, string partial, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(partial)!);
        // Exclusive: a second build fetching the same blob waits here instead of writing into it.
        await using var stream = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 20, useAsync: true);
        if (stream.Length > meta.Size) stream.SetLength(0);
        for (var attempt = 1; stream.Length < meta.Size || (meta.Size == 0 && attempt == 1); attempt++)
        {
            var start = stream.Length;
            if (start > 0) log($"{file}: resuming at {start.ToString(CultureInfo.InvariantCulture)} of {meta.Size.ToString(CultureInfo.InvariantCulture)} bytes.");
            stream.Seek(start, SeekOrigin.Begin);
            try
            {
                await client.DownloadAsync(id, meta.Location, stream, start, new DownloadProgress(file, meta.Size, start, log), ct);
                await stream.FlushAsync(ct);
                if (meta.Size == 0) break;
            }
            catch (Exception e) when (attempt < TransferAttempts && !ct.IsCancellationRequested &&
                                      (e is IOException or HttpRequestException || e is FineTuneException { Code: HubErrors.Unreachable }))
            {
                await stream.FlushAsync(ct);
                log($"{file}: transfer broke after {stream.Length.ToString(CultureInfo.InvariantCulture)} bytes ({e.Message}); retrying.");
                await Task.Delay(TimeSpan.FromSeconds(attempt), ct);
            }
            if (stream.Length == start && attempt >= TransferAttempts)
                throw new FineTuneException(HubErrors.Unreachable, $"{id}/{file}: the transfer stops at {start} of {meta.Size} bytes.");
        }
    }

    private static List<string> Shards(string index)
    {
        var map = (JsonNode.Parse(File.ReadAllText(index)) as JsonObject)?["weight_map"] as JsonObject
            ?? throw new FineTuneException("FT3013", "model.safetensors.index.json is not a valid index (no 'weight_map' object).", index);
        return map.Select(kv => kv.Value?.GetValue<string>()).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
    }

    private ResolvedModel Offline(HubModelId id, HubCache cache) =>
        Cached(id, cache) ?? throw new FineTuneException(HubErrors.NotCachedOffline,
            $"HF_HUB_OFFLINE=1 and the cache ({settings.CacheRoot}) does not hold {id} completely ({Missing(id, cache)}). Build once with the network (unset HF_HUB_OFFLINE) or point HF_HUB_CACHE at a cache that has it.");

    /// <summary>The cached snapshot of the revision, when every file training needs is there.</summary>
    private static ResolvedModel? Cached(HubModelId id, HubCache cache) =>
        Missing(id, cache) is null && cache.CommitOf(id.Revision) is { } commit ? new ResolvedModel(id, commit, cache.Snapshot(commit), []) : null;

    private static string? Missing(HubModelId id, HubCache cache)
    {
        if (cache.CommitOf(id.Revision) is not { } commit) return $"no commit recorded for revision '{id.Revision}'";
        var snapshot = cache.Snapshot(commit);
        foreach (var file in new[] { "config.json", "tokenizer.json" })
            if (!File.Exists(Path.Combine(snapshot, file))) return $"no {file} at commit {commit}";
        var index = Path.Combine(snapshot, ModelFiles.Index);
        if (File.Exists(index))
            return Shards(index).FirstOrDefault(s => !File.Exists(Path.Combine(snapshot, s))) is { } shard ? $"no {shard} at commit {commit}" : null;
        return Directory.Exists(snapshot) && Directory.EnumerateFiles(snapshot, "*.safetensors").Any(File.Exists) ? null : $"no weights at commit {commit}";
    }
}
