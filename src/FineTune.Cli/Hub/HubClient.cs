using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Hub;

/// <summary>What <c>GET /api/models/{repo}/revision/{rev}</c> says: the commit and the repository's files.</summary>
internal sealed record RevisionInfo(string Commit, IReadOnlyList<string> Files);

/// <summary>
/// What <c>HEAD /{repo}/resolve/{commit}/{file}</c> says. For a file in LFS the hub answers with a
/// redirect to storage elsewhere and puts the file's own metadata in <c>X-Linked-Etag</c> (its
/// SHA-256) and <c>X-Linked-Size</c>; for a small file <c>ETag</c> is its git blob hash.
/// </summary>
internal sealed record HubFileMetadata(string Commit, string Etag, long Size, Uri Location);

/// <summary>The hub's HTTP API as huggingface_hub uses it; redirects are followed by hand so a token never leaves the hub's host.</summary>
internal sealed class HubClient : IDisposable
{
    private const int MaxRedirects = 5;
    private readonly HttpClient _http;
    private readonly HubSettings _settings;

    public HubClient(HubSettings settings, TimeSpan? timeout = null)
    {
        _settings = settings;
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(15), AutomaticDecompression = DecompressionMethods.None };
        _http = new HttpClient(handler) { Timeout = timeout ?? TimeSpan.FromMinutes(30) };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("FineTune.Build", typeof(HubClient).Assembly.GetName().Version?.ToString() ?? "0"));
    }

    public async Task<RevisionInfo> RevisionAsync(HubModelId id, CancellationToken ct)
    {
        var url = new Uri(_settings.Endpoint, $"api/models/{id.Repo}/revision/{Uri.EscapeDataString(id.Revision)}");
        using var response = await SendAsync(HttpMethod.Get, url, null, id, ct);
        await ThrowOnErrorAsync(response, id, null);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct)) as JsonObject;
        var sha = json?["sha"]?.GetValue<string>();
        if (sha is null || !HubModelId.IsCommit(sha) || json!["siblings"] is not JsonArray siblings)
            throw new FineTuneException(HubErrors.BadResponse, $"{url} did not answer with a commit ('sha') and the file list ('siblings'); is HF_ENDPOINT a Hugging Face hub?");
        var files = siblings.Select(s => s?["rfilename"]?.GetValue<string>()).OfType<string>().ToList();
        return new RevisionInfo(sha, files);
    }

    public async Task<HubFileMetadata> HeadAsync(HubModelId id, string commit, string file, CancellationToken ct)
    {
        var url = ResolveUrl(id, commit, file);
        // Relative redirects (a renamed repository) stay on the hub and are followed; an absolute one
        // to another host is where the bytes are, and this response already carries their metadata.
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, url);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            using var response = await SendAsync(request, id, ct);
            var location = response.Headers.Location;
            if (IsRedirect(response.StatusCode) && location is not null && !location.IsAbsoluteUri && hop < MaxRedirects)
            {
                url = new Uri(url, location);
                continue;
            }
            if (!IsRedirect(response.StatusCode)) await ThrowOnErrorAsync(response, id, file);
            string? Header(string name) => response.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;
            var repoCommit = Header("X-Repo-Commit");
            var etag = Normalize(Header("X-Linked-Etag") ?? response.Headers.ETag?.Tag ?? Header("ETag"));
            var sizeText = Header("X-Linked-Size") ?? response.Content.Headers.ContentLength?.ToString();
            if (repoCommit is null || etag is null || !long.TryParse(sizeText, out var size))
                throw new FineTuneException(HubErrors.BadResponse,
                    $"The hub's answer for {id.Repo}/{file} lacks X-Repo-Commit, ETag or the size; a download cannot be checked without them. Is HF_ENDPOINT a Hugging Face hub?");
            return new HubFileMetadata(repoCommit, etag, size, location is null ? url : new Uri(url, location));
        }
    }

    /// <summary>
    /// Appends the bytes from <paramref name="from"/> on to <paramref name="destination"/> (a Range
    /// request when resuming). Returns false when the server ignored the Range and sent the whole file.
    /// </summary>
    public async Task<bool> DownloadAsync(HubModelId id, Uri location, Stream destination, long from, IProgress<long> progress, CancellationToken ct)
    {
        var url = location;
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (from > 0) request.Headers.Range = new RangeHeaderValue(from, null);
            using var response = await SendAsync(request, id, ct, HttpCompletionOption.ResponseHeadersRead);
            if (IsRedirect(response.StatusCode) && response.Headers.Location is { } next && hop < MaxRedirects)
            {
                url = new Uri(url, next);
                continue;
            }
            await ThrowOnErrorAsync(response, id, location.AbsolutePath);
            var resumed = response.StatusCode == HttpStatusCode.PartialContent;
            if (from > 0 && !resumed)
            {
                destination.SetLength(0);
                from = 0;
            }
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[1 << 20];
            var total = from;
            int n;
            while ((n = await body.ReadAsync(buffer, ct)) > 0)
            {
                await destination.WriteAsync(buffer.AsMemory(0, n), ct);
                total += n;
                progress.Report(total);
            }
            return resumed || from == 0;
        }
    }

    private Uri ResolveUrl(HubModelId id, string revision, string file) =>
        new(_settings.Endpoint, $"{id.Repo}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, string? file, HubModelId id, CancellationToken ct) =>
        SendAsync(new HttpRequestMessage(method, url), id, ct);

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HubModelId id, CancellationToken ct, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        // The token is for the hub only: storage a redirect points to (another host) never sees it.
        if (_settings.Token is { } token && SameAuthority(request.RequestUri!, _settings.Endpoint))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        try
        {
            return await _http.SendAsync(request, completion, ct);
        }
        catch (HttpRequestException e)
        {
            throw new FineTuneException(HubErrors.Unreachable,
                $"Cannot reach {request.RequestUri!.GetLeftPart(UriPartial.Authority)} to fetch {id} ({e.Message}). Check the network or HF_ENDPOINT; with the model already in the cache, HF_HUB_OFFLINE=1 builds without the network.", inner: e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new FineTuneException(HubErrors.Unreachable,
                $"{request.RequestUri!.GetLeftPart(UriPartial.Authority)} did not answer in time for {id}. Check the network or HF_ENDPOINT; with the model already in the cache, HF_HUB_OFFLINE=1 builds without the network.", inner: e);
        }
    }

    private async Task ThrowOnErrorAsync(HttpResponseMessage response, HubModelId id, string? file)
    {
        if (response.IsSuccessStatusCode) return;
        var code = response.Headers.TryGetValues("X-Error-Code", out var v) ? v.FirstOrDefault() : null;
        var page = new Uri(_settings.Endpoint, id.Repo);
        var status = (int)response.StatusCode;
        var tokenHint = _settings.Token is null
            ? "no token was sent: set HF_TOKEN (a read token from your account's settings) or run `huggingface-cli login`"
            : "the token that was sent has no access";
        throw (code, status) switch
        {
            ("GatedRepo", _) or (null, 401 or 403) => new FineTuneException(HubErrors.Gated,
                $"{id.Repo} is gated (HTTP {status}): accept its licence at {page} with your account, and make a token of that account available ({tokenHint})."),
            ("RepoNotFound", _) or (null, 404) when file is null => new FineTuneException(HubErrors.RepoNotFound,
                $"There is no model {id.Repo} on {_settings.Endpoint.Host} (HTTP {status}). Check the spelling (org/name, as in the model page's URL); a private model needs HF_TOKEN ({tokenHint})."),
            ("RepoNotFound", _) => new FineTuneException(HubErrors.RepoNotFound,
                $"There is no model {id.Repo} on {_settings.Endpoint.Host} (HTTP {status}). Check the spelling; a private model needs HF_TOKEN ({tokenHint})."),
            ("RevisionNotFound", _) => new FineTuneException(HubErrors.RevisionNotFound,
                $"{id.Repo} has no revision '{id.Revision}' (HTTP {status}). Use a branch, tag or full commit hash from the model's 'Files and versions' page, or drop '@{id.Revision}' for main."),
            _ => new FineTuneException(HubErrors.BadResponse,
                $"The hub answered HTTP {status} {response.ReasonPhrase} for {id.Repo}{(file is null ? "" : "/" + file)}{(code is null ? "" : $" ({code})")}."),
        };
    }

    private static bool IsRedirect(HttpStatusCode status) => (int)status is >= 300 and < 400;

    private static bool SameAuthority(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>huggingface_hub's normalisation: drop a weak marker and the quotes.</summary>
    private static string? Normalize(string? etag) =>
        etag is null ? null : (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    public void Dispose() => _http.Dispose();
}
