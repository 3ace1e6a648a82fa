using System.Text.Json.Nodes;

namespace FineTune.Ollama.TestServer;

/// <summary>One HTTP request the server received.</summary>
/// <param name="Method">HTTP method.</param>
/// <param name="Path">Request path, e.g. <c>/api/blobs/sha256:...</c>.</param>
/// <param name="Authorization">The Authorization header as received, or null.</param>
/// <param name="Status">The status code answered.</param>
public sealed record RecordedRequest(string Method, string Path, string? Authorization, int Status);

/// <summary>A model the server holds, as created through <c>/api/create</c> or <c>/api/copy</c>.</summary>
public sealed record TestModel
{
    /// <summary>Full name with tag, e.g. <c>tweet-caps:1.0.0</c>.</summary>
    public required string Name { get; init; }
    /// <summary>File name to digest, from <c>files</c> (or the base model's for <c>from</c>).</summary>
    public required IReadOnlyDictionary<string, string> Files { get; init; }
    /// <summary>File name to digest, from <c>adapters</c>.</summary>
    public required IReadOnlyDictionary<string, string> Adapters { get; init; }
    /// <summary>The base model named by <c>from</c>, or null.</summary>
    public string? From { get; init; }
    /// <summary>TEMPLATE, or null.</summary>
    public string? Template { get; init; }
    /// <summary>SYSTEM, or null.</summary>
    public string? System { get; init; }
    /// <summary>The parameters object as sent.</summary>
    public JsonObject? Parameters { get; init; }
    /// <summary>Licenses as sent (a string becomes one element).</summary>
    public required IReadOnlyList<string> License { get; init; }
    /// <summary>A digest identifying this model's content.</summary>
    public required string Digest { get; init; }
    /// <summary>Total size of its blobs.</summary>
    public long Size { get; init; }
    /// <summary>When it was created.</summary>
    public DateTimeOffset ModifiedAt { get; init; }
}
