using System.Text;
using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;

namespace FineTune.Core.Datasets;

/// <summary>
/// <c>train.jsonl</c> / <c>validation.jsonl</c> written by FineTuneFormat: one object per line,
/// <c>{"text": ..., "assistant_spans": [[start, end], ...], "content_spans": [[start, end], ...],
/// "source": {"file": "data/train.csv", "line": 12}, "loss_spans": [[start, end], ...]}</c> (source optional;
/// loss_spans only when the loss is not on the replies, e.g. <c>train_on_responses_only: false</c>), offsets in UTF-16 code units of <c>text</c> (what .NET and JavaScript strings index by).
/// Output is byte-for-byte deterministic so people can diff and inspect it.
/// </summary>
public static class FormattedDatasetFile
{
    /// <summary>Writes examples atomically, one JSON object per line, <c>\n</c> line ends.</summary>
    public static void Write(string path, IEnumerable<FormattedExample> examples) =>
        AtomicFile.Write(path, s =>
        {
            var options = new JsonWriterOptions { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            foreach (var e in examples)
            {
                using (var w = new Utf8JsonWriter(s, options)) WriteExample(w, e);
                s.WriteByte((byte)'\n');
            }
        });

    /// <summary>Reads every example; a malformed line is an error naming the file and line.</summary>
    public static IEnumerable<FormattedExample> Read(string path)
    {
        var lineNo = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0) continue;
            FormattedExample example;
            try
            {
                using var doc = JsonDocument.Parse(line);
                example = ReadExample(doc.RootElement);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new FineTuneException("FT1901", $"Formatted dataset line is malformed ({e.Message}). Delete the file and rebuild.", path, lineNo, 1);
            }
            yield return example;
        }
    }

    /// <summary>Writes one example as a JSON object (also the halves of a preference pair).</summary>
    internal static void WriteExample(Utf8JsonWriter w, FormattedExample e)
    {
        w.WriteStartObject();
        w.WriteString("text", e.Text);
        WriteSpans(w, "assistant_spans", e.AssistantSpans);
        WriteSpans(w, "content_spans", e.ContentSpans);
        if (e.Source is { } source)
        {
            w.WriteStartObject("source");
            w.WriteString("file", source.File);
            w.WriteNumber("line", source.Line);
            w.WriteEndObject();
        }
        if (e.LossSpans is { } loss) WriteSpans(w, "loss_spans", loss);
        w.WriteEndObject();
    }

    /// <summary>Reads one example object; malformed input throws JSON, key or format exceptions for the caller to name the line.</summary>
    internal static FormattedExample ReadExample(JsonElement root)
    {
        var text = root.GetProperty("text").GetString() ?? throw new FormatException("text is null");
        return new FormattedExample(text, ReadSpans(root, "assistant_spans", text.Length), ReadSpans(root, "content_spans", text.Length), ReadSource(root),
            root.TryGetProperty("loss_spans", out _) ? ReadSpans(root, "loss_spans", text.Length) : null);
    }

    private static void WriteSpans(Utf8JsonWriter w, string name, IReadOnlyList<TextSpan> spans)
    {
        w.WriteStartArray(name);
        foreach (var s in spans)
        {
            w.WriteStartArray();
            w.WriteNumberValue(s.Start);
            w.WriteNumberValue(s.End);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }

    private static ExampleSource? ReadSource(JsonElement root)
    {
        if (!root.TryGetProperty("source", out var source)) return null;
        var file = source.GetProperty("file").GetString() ?? throw new FormatException("source.file is null");
        return new ExampleSource(file, source.GetProperty("line").GetInt32());
    }

    private static List<TextSpan> ReadSpans(JsonElement root, string name, int textLength)
    {
        var result = new List<TextSpan>();
        if (!root.TryGetProperty(name, out var arr)) return result;
        foreach (var pair in arr.EnumerateArray())
        {
            var span = new TextSpan(pair[0].GetInt32(), pair[1].GetInt32());
            if (span.Start < 0 || span.End < span.Start || span.End > textLength)
                throw new FormatException($"{name} entry [{span.Start}, {span.End}] is outside the text (length {textLength})");
            result.Add(span);
        }
        return result;
    }
}
