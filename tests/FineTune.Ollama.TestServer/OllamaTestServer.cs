using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FineTune.Ollama.TestServer;

/// <summary>
/// An Ollama server for tests that follows the documented API (github.com/ollama/ollama, docs/api.md):
/// <c>HEAD</c>/<c>POST /api/blobs/:digest</c> (200 present, 404 missing, 201 created, 400 on a digest
/// mismatch), <c>POST /api/create</c> streaming NDJSON status lines to <c>success</c> or an <c>error</c>,
/// <c>POST /api/show</c>, <c>GET /api/tags</c>, <c>POST /api/copy</c>, <c>GET /api/version</c>, and a scripted
/// non-streamed <c>POST /api/chat</c>. It
/// records every request so tests can assert on what a client sent, and can be told to fail.
/// </summary>
/// <example><code>
/// await using var server = await OllamaTestServer.StartAsync();
/// // ... publish to server.BaseUrl ...
/// Assert.Contains("tweet-caps:1.0.0", server.Models.Keys);
/// </code></example>
public sealed partial class OllamaTestServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly string? apiKey;
    private readonly ConcurrentDictionary<string, byte[]> blobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TestModel> models = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentQueue<RecordedRequest> requests = new();
    private readonly ConcurrentQueue<JsonObject> createRequests = new();
    private readonly ConcurrentQueue<string> blobUploads = new();
    private readonly ConcurrentQueue<(string Prefix, int Status)> failures = new();
    private readonly ConcurrentQueue<(string Prefix, TimeSpan Delay)> stalls = new();
    private volatile string? createError;
    private readonly ConcurrentQueue<JsonObject> chatRequests = new();
    private (string Content, string DoneReason) chatReply = ("Hello from the test server.", "stop");

    private OllamaTestServer(WebApplication app, string? apiKey)
    {
        this.app = app;
        this.apiKey = apiKey;
    }

    /// <summary>Starts a server on 127.0.0.1 with a free port. With <paramref name="apiKey"/>, every request must carry <c>Authorization: Bearer apiKey</c> (else 401).</summary>
    public static async Task<OllamaTestServer> StartAsync(string? apiKey = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0);
            o.Limits.MaxRequestBodySize = null; // GGUF files are large
        });
        var app = builder.Build();
        var server = new OllamaTestServer(app, apiKey);
        server.Map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal);
        return server;
    }

    /// <summary>e.g. <c>http://127.0.0.1:41234</c> (no trailing slash).</summary>
    public string BaseUrl { get; private set; } = "";

    /// <summary>Stored blobs by digest (<c>sha256:hex</c>).</summary>
    public IReadOnlyDictionary<string, byte[]> Blobs => blobs;

    /// <summary>Models by full name (<c>model:tag</c>, case-insensitive).</summary>
    public IReadOnlyDictionary<string, TestModel> Models => models;

    /// <summary>Every request, in arrival order.</summary>
    public IReadOnlyList<RecordedRequest> Requests => requests.ToArray();

    /// <summary>The body of every <c>/api/create</c> request, in order.</summary>
    public IReadOnlyList<JsonObject> CreateRequests => createRequests.ToArray();

    /// <summary>The digest of every <c>POST /api/blobs</c> whose body the server read (stored or rejected).</summary>
    public IReadOnlyList<string> BlobUploads => blobUploads.ToArray();

    /// <summary>The next <paramref name="count"/> requests whose path starts with <paramref name="pathPrefix"/> are answered with <paramref name="status"/>.</summary>
    public void FailNext(string pathPrefix, int count, int status = 500)
    {
        for (var i = 0; i < count; i++) failures.Enqueue((pathPrefix, status));
    }

    /// <summary>The next <paramref name="count"/> requests whose path starts with <paramref name="pathPrefix"/> wait <paramref name="delay"/> before being handled (to test client timeouts).</summary>
    public void StallNext(string pathPrefix, int count, TimeSpan delay)
    {
        for (var i = 0; i < count; i++) stalls.Enqueue((pathPrefix, delay));
    }

    /// <summary>The body of every <c>/api/chat</c> request, in order.</summary>
    public IReadOnlyList<JsonObject> ChatRequests => chatRequests.ToArray();

    /// <summary>
    /// What <c>/api/chat</c> answers from now on. The server runs no model: replies are scripted
    /// (default: a plain sentence ending at a stop token).
    /// </summary>
    public void ScriptChat(string content, string doneReason = "stop") => chatReply = (content, doneReason);

    /// <summary>Every following create streams an <c>{"error": message}</c> line instead of succeeding (null to stop).</summary>
    public void FailCreates(string? message) => createError = message;

    /// <summary>Adds a model as if pulled earlier (a base for adapter mode).</summary>
    public void AddModel(string name, string? template = null)
    {
        var full = Normalize(name) ?? throw new ArgumentException($"invalid model name {name}", nameof(name));
        models[full] = new TestModel
        {
            Name = full, Files = new Dictionary<string, string>(), Adapters = new Dictionary<string, string>(), Template = template,
            License = [], Digest = Hex(Encoding.UTF8.GetBytes(full)), ModifiedAt = DateTimeOffset.UtcNow,
        };
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private void Map(WebApplication web)
    {
        web.Use(async (context, next) =>
        {
            var authorization = context.Request.Headers.Authorization.FirstOrDefault();
            if (stalls.TryPeek(out var stall) && (context.Request.Path.Value ?? "").StartsWith(stall.Prefix, StringComparison.Ordinal) && stalls.TryDequeue(out stall))
            {
                try { await Task.Delay(stall.Delay, context.RequestAborted); }
                catch (OperationCanceledException) { return; }
            }
            if (apiKey is not null && authorization != "Bearer " + apiKey)
                await Json(context, 401, new JsonObject { ["error"] = "unauthorized" });
            else if (TakeFailure(context.Request.Path.Value ?? "") is { } status)
                await Json(context, status, new JsonObject { ["error"] = $"injected failure {status}" });
            else
                await next(context);
            requests.Enqueue(new RecordedRequest(context.Request.Method, context.Request.Path.Value ?? "", authorization, context.Response.StatusCode));
        });
        web.MapGet("/", () => Results.Text("Ollama is running"));
        web.MapGet("/api/version", () => Results.Json(new { version = "0.0.0-finetune-test" }));
        web.MapMethods("/api/blobs/{digest}", ["HEAD"], HeadBlob);
        web.MapPost("/api/blobs/{digest}", PostBlob);
        web.MapPost("/api/create", Create);
        web.MapPost("/api/show", Show);
        web.MapGet("/api/tags", Tags);
        web.MapPost("/api/copy", Copy);
        web.MapPost("/api/chat", Chat);
    }

    private int? TakeFailure(string path)
    {
        if (failures.TryPeek(out var next) && path.StartsWith(next.Prefix, StringComparison.Ordinal) && failures.TryDequeue(out next))
            return next.Status;
        return null;
    }

    private async Task HeadBlob(HttpContext context, string digest)
    {
        if (!DigestPattern().IsMatch(digest)) { context.Response.StatusCode = 400; return; }
        context.Response.StatusCode = blobs.ContainsKey(digest) ? 200 : 404;
        await Task.CompletedTask;
    }

    private async Task PostBlob(HttpContext context, string digest)
    {
        if (!DigestPattern().IsMatch(digest)) { await Json(context, 400, Error("invalid digest format")); return; }
        if (blobs.ContainsKey(digest)) { context.Response.StatusCode = 200; return; }
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        blobUploads.Enqueue(digest);
        var actual = "sha256:" + Hex(buffer.ToArray());
        if (actual != digest) { await Json(context, 400, Error($"digest mismatch, expected \"{digest}\", got \"{actual}\"")); return; }
        blobs[digest] = buffer.ToArray();
        context.Response.StatusCode = 201;
    }

    private async Task Create(HttpContext context)
    {
        var body = await ReadObject(context);
        if (body is null) { await Json(context, 400, Error("missing request body")); return; }
        createRequests.Enqueue((JsonObject)body.DeepClone());

        var name = Normalize((string?)body["model"] ?? (string?)body["name"] ?? "");
        if (name is null) { await Json(context, 400, Error("invalid model name")); return; }
        var files = Map(body["files"]);
        var adapters = Map(body["adapters"]);
        if (files.Concat(adapters).Any(f => f.Value.Length == 0)) { await Json(context, 400, Error("invalid digest format")); return; }
        if (files.Keys.Any(f => f.StartsWith('/') || f.Split('/').Contains(".."))) { await Json(context, 400, Error("file paths must be relative")); return; }

        var lines = new List<JsonObject>();
        var error = Build(body, name, files, adapters, lines);
        if (body["stream"] is JsonValue stream && stream.TryGetValue<bool>(out var streaming) && !streaming)
        {
            await Json(context, error is null ? 200 : 500, error is null ? new JsonObject { ["status"] = "success" } : Error(error));
            return;
        }
        if (error is not null) lines.Add(Error(error));
        else lines.Add(new JsonObject { ["status"] = "success" });

        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/x-ndjson";
        foreach (var line in lines)
        {
            await context.Response.WriteAsync(line.ToJsonString() + "\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
    }

    /// <summary>Checks a create request against the stored blobs and models; null when the model was created.</summary>
    private string? Build(JsonObject body, string name, Dictionary<string, string> files, Dictionary<string, string> adapters, List<JsonObject> lines)
    {
        if (createError is { } injected) return injected;
        var from = (string?)body["from"];
        TestModel? baseModel = null;
        if (from is not null)
        {
            var fromName = Normalize(from);
            if (fromName is null || !models.TryGetValue(fromName, out baseModel)) return $"pull model manifest: model \"{from}\" not found";
            lines.Add(Status("reading model metadata"));
        }
        else if (files.Count == 0) return "neither 'from' or 'files' was specified";

        long size = 0;
        foreach (var (file, digest) in files.Concat(adapters))
        {
            if (!blobs.TryGetValue(digest, out var data)) return $"blob {digest} not found";
            if (data.Length < 4 || Encoding.ASCII.GetString(data, 0, 4) != "GGUF") return $"{file}: supplied file was not in GGUF format";
            lines.Add(Status("parsing GGUF"));
            lines.Add(Status($"using existing layer {digest}"));
            size += data.Length;
        }
        foreach (var layer in new[] { "template", "system", "parameters", "license", "messages" })
            if (body[layer] is not null) lines.Add(Status($"creating {layer} layer"));
        lines.Add(Status("writing manifest"));

        var license = body["license"] switch
        {
            JsonArray array => array.Select(x => (string?)x ?? "").ToList(),
            JsonValue value => [(string?)value ?? ""],
            _ => new List<string>(),
        };
        var clean = (JsonObject)body.DeepClone();
        clean.Remove("stream");
        models[name] = new TestModel
        {
            Name = name,
            From = from,
            Files = files.Count > 0 ? files : new Dictionary<string, string>(baseModel!.Files),
            Adapters = adapters,
            Template = (string?)body["template"] ?? baseModel?.Template,
            System = (string?)body["system"] ?? baseModel?.System,
            Parameters = body["parameters"]?.DeepClone() as JsonObject,
            License = license,
            Digest = Hex(Encoding.UTF8.GetBytes(clean.ToJsonString())),
            Size = size,
            ModifiedAt = DateTimeOffset.UtcNow,
        };
        return null;
    }

    private async Task Show(HttpContext context)
    {
        var body = await ReadObject(context);
        var requested = (string?)body?["model"] ?? (string?)body?["name"] ?? "";
        if (Normalize(requested) is not { } name || !models.TryGetValue(name, out var model))
        {
            await Json(context, 404, Error($"model '{requested}' not found"));
            return;
        }
        var parameters = new StringBuilder();
        foreach (var (key, value) in model.Parameters ?? [])
            foreach (var item in value is JsonArray list ? list.ToArray() : [value])
                parameters.Append(key.PadRight(30)).Append(' ').Append(item is JsonValue v && v.TryGetValue<string>(out var s) ? GoQuote.Quote(s) : item?.ToJsonString()).Append('\n');
        await Json(context, 200, new JsonObject
        {
            ["modelfile"] = $"# Modelfile generated by \"ollama show\"\nFROM {model.Name}\n",
            ["parameters"] = parameters.ToString().TrimEnd('\n'),
            ["template"] = model.Template ?? "{{ .Prompt }}",
            ["system"] = model.System,
            ["license"] = string.Join("\n", model.License),
            ["details"] = Details(model),
            ["model_info"] = new JsonObject(),
            ["capabilities"] = new JsonArray("completion"),
            ["modified_at"] = model.ModifiedAt.ToString("O"),
        });
    }

    /// <summary><c>POST /api/chat</c>, non-streamed, answered with the scripted reply (404 for an unknown model, as Ollama does).</summary>
    private async Task Chat(HttpContext context)
    {
        var body = await ReadObject(context);
        if (body is null) { await Json(context, 400, Error("missing request body")); return; }
        chatRequests.Enqueue((JsonObject)body.DeepClone());
        var requested = (string?)body["model"] ?? "";
        if (Normalize(requested) is not { } name || !models.ContainsKey(name))
        {
            await Json(context, 404, Error($"model \"{requested}\" not found, try pulling it first"));
            return;
        }
        var (content, doneReason) = chatReply;
        await Json(context, 200, new JsonObject
        {
            ["model"] = requested,
            ["created_at"] = DateTimeOffset.UtcNow.ToString("O"),
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content },
            ["done"] = true,
            ["done_reason"] = doneReason,
            ["prompt_eval_count"] = 12,
            ["eval_count"] = content.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length,
        });
    }

    private async Task Tags(HttpContext context) =>
        await Json(context, 200, new JsonObject
        {
            ["models"] = new JsonArray(models.Values.OrderBy(m => m.Name, StringComparer.Ordinal).Select(m => (JsonNode)new JsonObject
            {
                ["name"] = m.Name,
                ["model"] = m.Name,
                ["modified_at"] = m.ModifiedAt.ToString("O"),
                ["size"] = m.Size,
                ["digest"] = m.Digest,
                ["details"] = Details(m),
            }).ToArray()),
        });

    private async Task Copy(HttpContext context)
    {
        var body = await ReadObject(context);
        var source = (string?)body?["source"] ?? "";
        var destination = (string?)body?["destination"] ?? "";
        if (Normalize(source) is not { } from) { await Json(context, 400, Error($"source \"{source}\" is invalid")); return; }
        if (Normalize(destination) is not { } to) { await Json(context, 400, Error($"destination \"{destination}\" is invalid")); return; }
        if (!models.TryGetValue(from, out var model)) { await Json(context, 404, Error($"model \"{source}\" not found")); return; }
        models[to] = model with { Name = to, ModifiedAt = DateTimeOffset.UtcNow };
        context.Response.StatusCode = 200;
    }

    private static JsonObject Details(TestModel model) => new()
    {
        ["parent_model"] = model.From ?? "",
        ["format"] = "gguf",
        ["family"] = "llama",
        ["families"] = new JsonArray("llama"),
        ["parameter_size"] = "",
        ["quantization_level"] = "",
    };

    /// <summary><c>[namespace/]model[:tag]</c> with the documented character rules, tag defaulting to latest; null when invalid.</summary>
    private static string? Normalize(string name)
    {
        var match = NamePattern().Match(name);
        if (!match.Success) return null;
        return match.Groups["tag"].Success ? name : name + ":latest";
    }

    private static Dictionary<string, string> Map(JsonNode? node) =>
        node is JsonObject o ? o.ToDictionary(p => p.Key, p => (string?)p.Value ?? "", StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);

    private static async Task<JsonObject?> ReadObject(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(context.RequestAborted);
        try { return text.Length == 0 ? null : JsonNode.Parse(text) as JsonObject; }
        catch (JsonException) { return null; }
    }

    private static async Task Json(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    private static JsonObject Error(string message) => new() { ["error"] = message };

    private static JsonObject Status(string message) => new() { ["status"] = message };

    private static string Hex(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    [GeneratedRegex("^sha256:[0-9a-f]{64}$")]
    private static partial Regex DigestPattern();

    [GeneratedRegex(@"^(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,79}/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}))?$")]
    private static partial Regex NamePattern();
}
