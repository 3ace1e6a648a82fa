using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Ollama.Publishing;

/// <summary>What the published model answered to one prompt, and whether that answer is healthy.</summary>
/// <param name="Model">The model that was asked, <c>name:tag</c>.</param>
/// <param name="Prompt">The user message sent.</param>
/// <param name="Reply">The assistant message received.</param>
/// <param name="DoneReason">Ollama's <c>done_reason</c>: <c>stop</c> when a stop token ended the reply, <c>length</c> at the token limit.</param>
/// <param name="EvalCount">Tokens generated, as the server counted them (null when not reported).</param>
/// <param name="MaxTokens">The token limit sent as <c>num_predict</c>.</param>
/// <param name="Markers">Template markers (stop strings, literal template text) found in the reply.</param>
public sealed record SmokeTestResult(string Model, string Prompt, string Reply, string? DoneReason, int? EvalCount, int MaxTokens, IReadOnlyList<string> Markers)
{
    /// <summary>The reply ended at a stop token, not at the limit.</summary>
    public bool Stopped => DoneReason == "stop";

    /// <summary>The model answered something, stopped by itself and leaked no template text.</summary>
    public bool Passed => Stopped && Markers.Count == 0 && Reply.Trim().Length > 0;

    /// <summary>Writes the result as JSON (atomically), for CI and the next person to look.</summary>
    public void Write(string path) => AtomicFile.WriteAllText(path, new JsonObject
    {
        ["model"] = Model,
        ["prompt"] = Prompt,
        ["reply"] = Reply,
        ["done_reason"] = DoneReason,
        ["eval_count"] = EvalCount,
        ["max_tokens"] = MaxTokens,
        ["markers"] = new JsonArray(Markers.Select(m => (JsonNode)m).ToArray()),
        ["stopped"] = Stopped,
        ["passed"] = Passed,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
}

/// <summary>
/// After publishing, asks the server's copy of the model one question the way a user would
/// (<c>/api/chat</c>, greedy, bounded) and checks what users complain about most: a model that never
/// stops, or one whose replies show the chat template's own markers.
/// </summary>
public sealed partial class OllamaSmokeTest(OllamaClient client)
{
    /// <summary>Asks <paramref name="model"/> <paramref name="prompt"/> with at most <paramref name="maxTokens"/> tokens at temperature 0.</summary>
    public async Task<SmokeTestResult> RunAsync(string model, Modelfile modelfile, string prompt, int maxTokens, CancellationToken cancellationToken = default)
    {
        var request = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }),
            ["stream"] = false,
            ["options"] = new JsonObject { ["temperature"] = 0, ["seed"] = 0, ["num_predict"] = maxTokens },
        };
        JsonObject answer;
        try
        {
            answer = await client.ChatAsync(request, cancellationToken);
        }
        catch (FineTuneException e) when (e.Code == OllamaErrorCodes.ServerError)
        {
            throw new FineTuneException(OllamaErrorCodes.SmokeTestFailed,
                $"{model} was published but cannot answer a chat: {e.Message} The server may not support this model's architecture or quantization; check its version and logs, or publish with -p:OllamaSmokeTest=false to skip this check.");
        }
        var reply = (string?)answer["message"]?["content"] ?? "";
        var evalCount = answer["eval_count"] is JsonValue count && count.TryGetValue<int>(out var n) ? n : (int?)null;
        return new SmokeTestResult(model, prompt, reply, (string?)answer["done_reason"], evalCount, maxTokens, MarkersIn(reply, modelfile));
    }

    /// <summary>
    /// Stop strings and the literal text of the TEMPLATE (outside its <c>{{ }}</c> actions: each line of
    /// 3 characters or more such as <c>### Response:</c>, and each special-token-like tag such as
    /// <c>&lt;|end_header_id|&gt;</c> or <c>[INST]</c>) that occur in <paramref name="reply"/>.
    /// </summary>
    public static IReadOnlyList<string> MarkersIn(string reply, Modelfile modelfile)
    {
        var markers = modelfile.Parameters.Where(p => p.Key == "stop").Select(p => p.Value).ToList();
        if (modelfile.Template is { } template)
            foreach (var literal in Actions().Split(template))
            {
                markers.AddRange(literal.Split('\n').Select(piece => piece.Trim()).Where(piece => piece.Length >= 3));
                markers.AddRange(Tags().Matches(literal).Select(m => m.Value));
            }
        return markers.Where(m => m.Length > 0 && reply.Contains(m, StringComparison.Ordinal)).Distinct(StringComparer.Ordinal).ToList();
    }

    [GeneratedRegex(@"\{\{.*?\}\}", RegexOptions.Singleline)]
    private static partial Regex Actions();

    [GeneratedRegex(@"<[^<>\s]+>|\[/?[A-Z_]+\]")]
    private static partial Regex Tags();
}
