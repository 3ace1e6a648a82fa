using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace FineTune.Ollama.Publishing;

/// <summary>
/// The parts of Ollama's HTTP API (docs/api.md) that publishing needs: blobs, create, show, copy and
/// tags. Connection errors, timeouts and 5xx answers are retried with exponential backoff; what still
/// fails becomes an FT5xxx error carrying the server's own text and never the API key.
/// </summary>
public sealed class OllamaClient : IDisposable
{
    private readonly HttpClient http;
    private readonly OllamaClientOptions options;
    private readonly ResiliencePipeline<HttpResponseMessage> quick;
    private readonly ResiliencePipeline<HttpResponseMessage> transfer;

    /// <summary>A client for the server at <paramref name="baseUrl"/> (see <see cref="OllamaHost"/>).</summary>
    public OllamaClient(Uri baseUrl, OllamaClientOptions? options = null)
    {
        this.options = options ?? new OllamaClientOptions();
        BaseUrl = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/");
        // Timeouts are per attempt (Polly); the client itself must not cut a long upload short.
        http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = this.options.ConnectTimeout })
        {
            BaseAddress = BaseUrl,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        quick = Pipeline(this.options.RequestTimeout);
        transfer = Pipeline(this.options.TransferTimeout);
    }

    /// <summary>The server's base URL.</summary>
    public Uri BaseUrl { get; }

    /// <summary><c>HEAD /api/blobs/:digest</c>: true on 200, false on 404.</summary>
    public async Task<bool> BlobExistsAsync(string digest, CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(quick, () => new HttpRequestMessage(HttpMethod.Head, "api/blobs/" + digest), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await EnsureSuccessAsync(response, $"checking blob {digest}", cancellationToken);
        return true;
    }

    /// <summary>
    /// <c>POST /api/blobs/:digest</c>, streaming <paramref name="path"/> from disk; <paramref name="progress"/>
    /// receives the bytes sent so far. A 400 answer (digest mismatch) is FT5007.
    /// </summary>
    public async Task UploadBlobAsync(string path, string digest, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var length = FineTune.Core.IO.FileLinks.Length(path);
        using var response = await SendAsync(transfer, () =>
        {
            var stream = new ProgressStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true), progress);
            var content = new StreamContent(stream, 1 << 20);
            content.Headers.ContentLength = length;
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            return new HttpRequestMessage(HttpMethod.Post, "api/blobs/" + digest) { Content = content };
        }, cancellationToken);
        if (response.StatusCode == HttpStatusCode.BadRequest)
            throw new FineTuneException(OllamaErrorCodes.DigestRejected,
                $"Ollama at {Display} rejected the upload of {Path.GetFileName(path)} as {digest}: {await ErrorTextAsync(response, cancellationToken)}. The file changed while it was uploaded, or the server stores it differently; rebuild and publish again.",
                path);
        await EnsureSuccessAsync(response, $"uploading {Path.GetFileName(path)}", cancellationToken);
    }

    /// <summary>
    /// <c>POST /api/create</c> with <paramref name="request"/> (streaming); each status line goes to
    /// <paramref name="onStatus"/> until <c>success</c>. An <c>error</c> line is FT5008 with the server's text.
    /// </summary>
    public async Task CreateAsync(JsonObject request, Action<JsonObject> onStatus, CancellationToken cancellationToken = default)
    {
        request["stream"] = true;
        var body = request.ToJsonString();
        using var response = await SendAsync(transfer, () => JsonRequest("api/create", body), cancellationToken, HttpCompletionOption.ResponseHeadersRead);
        await EnsureSuccessAsync(response, $"creating {request["model"]}", cancellationToken);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.TransferTimeout);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token), Encoding.UTF8);
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.Length == 0) continue;
            var status = ParseObject(line) ?? throw new FineTuneException(OllamaErrorCodes.ServerError,
                $"Ollama at {Display} sent a status line that is not JSON while creating {request["model"]}: {Truncate(line)}");
            if (status["error"] is { } error)
                throw new FineTuneException(OllamaErrorCodes.ServerError, $"Ollama at {Display} could not create {request["model"]}: {error}");
            onStatus(status);
            if ((string?)status["status"] == "success") return;
        }
        throw new FineTuneException(OllamaErrorCodes.ServerError,
            $"Ollama at {Display} ended the create stream for {request["model"]} without reporting success.");
    }

    /// <summary><c>POST /api/show</c>: the model's details, or null when the server does not have it (404).</summary>
    public async Task<JsonObject?> ShowAsync(string model, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject { ["model"] = model }.ToJsonString();
        using var response = await SendAsync(quick, () => JsonRequest("api/show", body), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, $"showing {model}", cancellationToken);
        return ParseObject(await response.Content.ReadAsStringAsync(cancellationToken));
    }

    /// <summary>
    /// <c>POST /api/chat</c> without streaming: the whole answer (<c>message</c>, <c>done_reason</c>,
    /// <c>eval_count</c>, ...). Loading a model can take long, so this waits as long as a transfer.
    /// </summary>
    public async Task<JsonObject> ChatAsync(JsonObject request, CancellationToken cancellationToken = default)
    {
        request["stream"] = false;
        var body = request.ToJsonString();
        using var response = await SendAsync(transfer, () => JsonRequest("api/chat", body), cancellationToken);
        await EnsureSuccessAsync(response, $"chatting with {request["model"]}", cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return ParseObject(text) ?? throw new FineTuneException(OllamaErrorCodes.ServerError,
            $"Ollama at {Display} answered a chat with {request["model"]} with something that is not a JSON object: {Truncate(text)}");
    }

    /// <summary><c>POST /api/copy</c>: gives <paramref name="source"/> a second name.</summary>
    public async Task CopyAsync(string source, string destination, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject { ["source"] = source, ["destination"] = destination }.ToJsonString();
        using var response = await SendAsync(quick, () => JsonRequest("api/copy", body), cancellationToken);
        await EnsureSuccessAsync(response, $"copying {source} to {destination}", cancellationToken);
    }

    /// <summary><c>GET /api/tags</c>: the names of the models on the server.</summary>
    public async Task<IReadOnlyList<string>> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(quick, () => new HttpRequestMessage(HttpMethod.Get, "api/tags"), cancellationToken);
        await EnsureSuccessAsync(response, "listing models", cancellationToken);
        var json = ParseObject(await response.Content.ReadAsStringAsync(cancellationToken));
        return json?["models"] is JsonArray models ? models.Select(m => (string?)m?["name"]).OfType<string>().ToList() : [];
    }

    /// <inheritdoc />
    public void Dispose() => http.Dispose();

    private string Display => BaseUrl.GetLeftPart(UriPartial.Authority);

    private ResiliencePipeline<HttpResponseMessage> Pipeline(TimeSpan timeout)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(r => (int)r.StatusCode >= 500),
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = args =>
                {
                    var why = args.Outcome.Exception is { } e ? Reason(e) : $"HTTP {(int)args.Outcome.Result!.StatusCode}";
                    options.Log?.Invoke($"ollama: {why}; retry {args.AttemptNumber + 1} of {options.MaxRetries} in {args.RetryDelay.TotalSeconds:0.0}s");
                    return default;
                },
            });
        }
        return builder.AddTimeout(timeout).Build();
    }

    private async Task<HttpResponseMessage> SendAsync(ResiliencePipeline<HttpResponseMessage> pipeline, Func<HttpRequestMessage> create,
        CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await pipeline.ExecuteAsync(async token =>
            {
                using var request = create();
                if (options.ApiKey is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
                return await http.SendAsync(request, completion, token);
            }, cancellationToken);
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutRejectedException && !cancellationToken.IsCancellationRequested)
        {
            throw new FineTuneException(OllamaErrorCodes.Unreachable,
                $"cannot reach Ollama at {Display}: {Reason(e)} (tried {options.MaxRetries + 1} times). Check that the server is running and that --host / OllamaHost / {OllamaHost.EnvironmentVariable} points to it.");
        }
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, string action, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode) return;
        var text = await ErrorTextAsync(response, cancellationToken);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            throw new FineTuneException(OllamaErrorCodes.Unauthorized,
                $"Ollama at {Display} refused {action} (HTTP {(int)response.StatusCode}: {text}). " +
                (options.ApiKey is null ? $"Set {OllamaClientOptions.ApiKeyVariable} to an API key for this server." : $"Check the key in {OllamaClientOptions.ApiKeyVariable}."));
        throw new FineTuneException(OllamaErrorCodes.ServerError, $"Ollama at {Display} failed {action}: HTTP {(int)response.StatusCode}: {text}");
    }

    private static async Task<string> ErrorTextAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        return ParseObject(body)?["error"]?.ToString() is { Length: > 0 } error ? error
            : body.Length > 0 ? Truncate(body) : response.ReasonPhrase ?? "no details";
    }

    private static HttpRequestMessage JsonRequest(string path, string body) =>
        new(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    private static JsonObject? ParseObject(string text)
    {
        try { return JsonNode.Parse(text) as JsonObject; }
        catch (JsonException) { return null; }
    }

    private static string Reason(Exception e) => e switch
    {
        TimeoutRejectedException t => $"no answer within {t.Timeout.TotalSeconds:0.#}s",
        HttpRequestException { InnerException: { } inner } => inner.Message,
        _ => e.Message,
    };

    private static string Truncate(string s) => s.Length <= 500 ? s.Trim() : s[..500].Trim() + "...";
}
