using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FineTune.Hub.TestServer;

/// <summary>A request as the server saw it.</summary>
public sealed record HubRequest(string Method, string Host, string Path, string? Range, string? Authorization);

/// <summary>
/// A Hugging Face hub for tests, following the API huggingface_hub's file_download.py relies on:
/// <c>GET /api/models/{repo}/revision/{rev}</c> (JSON with <c>sha</c> and <c>siblings</c>);
/// <c>GET|HEAD /{repo}/resolve/{rev}/{file}</c> answering with <c>X-Repo-Commit</c> and an
/// <c>ETag</c> (the git blob SHA-1) for small files, and for LFS files a 302 to storage on another
/// host (127.0.0.2) with <c>X-Linked-Etag</c> (the SHA-256) and <c>X-Linked-Size</c>; storage serves
/// Range requests. Errors carry <c>X-Error-Code</c> (RepoNotFound, RevisionNotFound, EntryNotFound,
/// GatedRepo) with 401/403/404 as the hub sends them.
/// </summary>
public sealed class HubTestServer : IAsyncDisposable
{
    /// <summary>Files at least this large are stored in LFS (the hub's threshold is 10 MB; tests use small files).</summary>
    public const int LfsThreshold = 1024;

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, HubRepo> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<HubRequest> _requests = new();
    private readonly ConcurrentDictionary<string, int> _breakAfter = new(StringComparer.Ordinal);

    private HubTestServer(WebApplication app) => _app = app;

    public static async Task<HubTestServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0);
            o.Listen(IPAddress.Parse("127.0.0.2"), 0);
        });
        var app = builder.Build();
        var server = new HubTestServer(app);
        server.Map(app);
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        server.Endpoint = addresses.Single(a => a.Contains("127.0.0.1", StringComparison.Ordinal));
        server.StorageEndpoint = addresses.Single(a => a.Contains("127.0.0.2", StringComparison.Ordinal));
        return server;
    }

    /// <summary>The hub, e.g. <c>http://127.0.0.1:41234</c>: what HF_ENDPOINT is set to.</summary>
    public string Endpoint { get; private set; } = "";

    /// <summary>Where LFS files are redirected to: another host.</summary>
    public string StorageEndpoint { get; private set; } = "";

    public IReadOnlyList<HubRequest> Requests => _requests.ToArray();

    /// <summary>Adds a commit to a repository (created when new) and points <paramref name="branch"/> at it; returns the commit hash.</summary>
    public string Publish(string repo, IReadOnlyDictionary<string, byte[]> files, string branch = "main", string? gatedToken = null)
    {
        var r = _repos.GetOrAdd(repo, _ => new HubRepo());
        if (gatedToken is not null) r.GatedToken = gatedToken;
        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repo + "\n" + r.Commits.Count + "\n" + string.Join("\n", files.Keys.Order()))));
        r.Commits[commit] = new Dictionary<string, byte[]>(files);
        r.Refs[branch] = commit;
        return commit;
    }

    /// <summary>The next storage download of <paramref name="sha256"/> stops after <paramref name="bytes"/> bytes (a broken connection).</summary>
    public void BreakNextDownload(string sha256, int bytes) => _breakAfter[sha256] = bytes;

    public static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static string GitBlobSha1(byte[] data) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {data.Length}\0"), .. data]));

    private void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            var r = context.Request;
            _requests.Enqueue(new HubRequest(r.Method, r.Host.Value ?? "", r.Path.Value ?? "", r.Headers.Range.FirstOrDefault(), r.Headers.Authorization.FirstOrDefault()));
            await next();
        });
        app.MapGet("/api/models/{org}/{name}/revision/{**revision}", (HttpContext context, string org, string name, string revision) =>
        {
            if (Lookup(context, $"{org}/{name}", Uri.UnescapeDataString(revision), out var repo, out var commit) is { } error) return error;
            var siblings = new JsonArray(repo!.Commits[commit!].Keys.Order(StringComparer.Ordinal).Select(f => (JsonNode)new JsonObject { ["rfilename"] = f }).ToArray());
            return Results.Text(new JsonObject { ["id"] = $"{org}/{name}", ["sha"] = commit, ["siblings"] = siblings, ["gated"] = repo.GatedToken is null ? false : "manual" }.ToJsonString(), "application/json");
        });
        app.MapMethods("/{org}/{name}/resolve/{revision}/{**file}", ["GET", "HEAD"], (HttpContext context, string org, string name, string revision, string file) =>
        {
            if (Lookup(context, $"{org}/{name}", Uri.UnescapeDataString(revision), out var repo, out var commit) is { } error) return error;
            if (!repo!.Commits[commit!].TryGetValue(file, out var data))
                return Error(context, 404, "EntryNotFound");
            context.Response.Headers["X-Repo-Commit"] = commit;
            if (data.Length >= LfsThreshold)
            {
                var sha = Sha256(data);
                context.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
                context.Response.Headers["X-Linked-Size"] = data.Length.ToString();
                context.Response.Headers.ETag = $"\"{GitBlobSha1(Encoding.ASCII.GetBytes("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha))}\"";
                return Results.Redirect($"{StorageEndpoint}/lfs/{sha}?repo={Uri.EscapeDataString(org + "/" + name)}");
            }
            context.Response.Headers.ETag = $"\"{GitBlobSha1(data)}\"";
            return Results.Bytes(data, "application/octet-stream");
        });
        app.MapGet("/lfs/{sha}", async (HttpContext context, string sha) =>
        {
            var data = _repos.Values.SelectMany(r => r.Commits.Values).SelectMany(c => c.Values).FirstOrDefault(d => d.Length >= LfsThreshold && Sha256(d) == sha);
            if (data is null) return Results.NotFound();
            if (_breakAfter.TryRemove(sha, out var cut))
            {
                var start = ParseRangeStart(context.Request.Headers.Range.FirstOrDefault());
                context.Response.StatusCode = start > 0 ? 206 : 200;
                context.Response.ContentLength = data.Length - start;
                if (start > 0) context.Response.Headers.ContentRange = $"bytes {start}-{data.Length - 1}/{data.Length}";
                await context.Response.Body.WriteAsync(data.AsMemory((int)start, Math.Min(cut, data.Length - (int)start)));
                await context.Response.Body.FlushAsync();
                // Let the bytes reach the client before the connection drops mid-body.
                await Task.Delay(200);
                context.Abort();
                return Results.Empty;
            }
            return Results.Bytes(data, "application/octet-stream", enableRangeProcessing: true);
        });
    }

    private IResult? Lookup(HttpContext context, string name, string revision, out HubRepo? repo, out string? commit)
    {
        commit = null;
        if (!_repos.TryGetValue(name, out repo)) return Error(context, 401, "RepoNotFound");
        if (repo.GatedToken is { } token && context.Request.Headers.Authorization.FirstOrDefault() != "Bearer " + token)
            return Error(context, context.Request.Headers.Authorization.Count == 0 ? 401 : 403, "GatedRepo");
        commit = repo.Refs.TryGetValue(revision, out var c) ? c : repo.Commits.ContainsKey(revision) ? revision : null;
        return commit is null ? Error(context, 404, "RevisionNotFound") : null;
    }

    private static IResult Error(HttpContext context, int status, string code)
    {
        context.Response.Headers["X-Error-Code"] = code;
        return Results.Text($"{{\"error\":\"{code}\"}}", "application/json", statusCode: status);
    }

    private static long ParseRangeStart(string? range) =>
        range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && long.TryParse(range[6..].TrimEnd('-').Split('-')[0], out var s) ? s : 0;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class HubRepo
    {
        public ConcurrentDictionary<string, Dictionary<string, byte[]>> Commits { get; } = new(StringComparer.Ordinal);
        public ConcurrentDictionary<string, string> Refs { get; } = new(StringComparer.Ordinal);
        public string? GatedToken { get; set; }
    }
}
