using System.Text.Encodings.Web;
using System.Text.Json;
using FineTune.Cli.Chat;
using FineTune.Core.IO;

namespace FineTune.Cli.Samples;

/// <summary>One held-out prompt answered by the base model (before) and the fine-tuned model (after).</summary>
public sealed record SampleResult(HeldOutPrompt Prompt, Reply Before, Reply After);

/// <summary>Writes <c>samples.json</c>, the input of <c>finetune report --samples</c>.</summary>
public static class SampleSet
{
    /// <summary>
    /// Writes <paramref name="results"/> atomically as <c>[{"prompt", "before", "after", "reference",
    /// "before_end", "after_end", "prompt_text", "max_tokens"}]</c>, <c>max_tokens</c> being the limit the
    /// replies were generated under. An empty list means there were no held-out prompts.
    /// </summary>
    public static void Write(string path, IReadOnlyList<SampleResult> results, int maxTokens) =>
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            w.WriteStartArray();
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("prompt", r.Prompt.Question);
                w.WriteString("before", r.Before.Text);
                w.WriteString("after", r.After.Text);
                w.WriteString("reference", r.Prompt.Reference);
                w.WriteString("before_end", Describe(r.Before));
                w.WriteString("after_end", Describe(r.After));
                w.WriteString("prompt_text", r.Prompt.Text);
                w.WriteNumber("max_tokens", maxTokens);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.Flush();
            stream.WriteByte((byte)'\n');
        });

    /// <summary>How <see cref="Describe"/> says a reply ended at a stop token.</summary>
    public const string StopTokenEnd = "stop token";

    /// <summary>How a reply ended, in words for the report: <c>stop token</c>, <c>max tokens (48)</c>, ...</summary>
    public static string Describe(Reply reply) => reply.Reason switch
    {
        StopReason.StopToken or StopReason.StopString => StopTokenEnd,
        StopReason.MaxTokens => $"max tokens ({reply.GeneratedTokens})",
        _ => "context full",
    };
}
