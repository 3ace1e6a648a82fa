using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;

namespace FineTune.Cli.Quality;

/// <summary>A greedy reply and how it ended (<c>stop token</c>, <c>max tokens (48)</c>, ...).</summary>
public sealed record GateReply(string Text, string End, bool Stopped);

/// <summary>A GGUF's reply to one prompt, and the character where it first differs from the trained model's (null when equal).</summary>
public sealed record QuantizedReply(string Quantization, string Text, string End, bool Stopped, int? DivergesAt);

/// <summary>One held-out prompt answered by the trained model and by every GGUF.</summary>
public sealed record ReplyComparison(string Prompt, GateReply Trained, IReadOnlyList<QuantizedReply> Quantized);

/// <summary>
/// One GGUF measured against the trained model: its loss and perplexity on the same tokens,
/// <see cref="PerplexityGap"/> = perplexity / trained perplexity − 1, and how many of its greedy
/// replies reached a stop token or differ from the trained model's.
/// </summary>
public sealed record QuantizationResult(string Quantization, string File, double Loss, double Perplexity, double PerplexityGap,
    int RepliesStopped, int Replies, int RepliesDiverged, string TensorTypes);

/// <summary>
/// What <c>finetune gguf-check</c> measured (<c>quality.json</c>): the trained model (base + adapter)
/// and each GGUF on the same held-out tokens and prompts. <see cref="Data"/> names the split the
/// numbers come from (<c>validation</c>, or <c>train</c> when there is no validation split).
/// </summary>
public sealed record QualityCheck(string Data, int Examples, long TargetTokens, int MaxTokens,
    double TrainedLoss, double TrainedPerplexity, int TrainedRepliesStopped,
    IReadOnlyList<QuantizationResult> Quantizations, IReadOnlyList<ReplyComparison> Replies)
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes the check atomically as JSON.</summary>
    public void Write(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Options) + "\n");

    /// <summary>Reads a <c>quality.json</c>; FT7005/FT7006 when it is malformed or missing.</summary>
    public static QualityCheck Read(string path)
    {
        if (!System.IO.File.Exists(path)) throw new FineTuneException("FT7006", "The quality check (quality.json) does not exist; run 'finetune gguf-check' first.", path);
        try
        {
            return JsonSerializer.Deserialize<QualityCheck>(System.IO.File.ReadAllText(path), Options)
                ?? throw new FineTuneException("FT7005", "quality.json is empty.", path, 1);
        }
        catch (JsonException e)
        {
            throw new FineTuneException("FT7005", $"quality.json is not what 'finetune gguf-check' writes: {e.Message}", path, (int)(e.LineNumber ?? 0) + 1);
        }
    }
}
