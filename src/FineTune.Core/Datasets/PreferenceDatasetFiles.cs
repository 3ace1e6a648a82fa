using System.Text;
using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;

namespace FineTune.Core.Datasets;

/// <summary>A preference row rendered with the chat template: prompt + chosen and prompt + rejected, loss spans on the completions only.</summary>
public sealed record FormattedPair(FormattedExample Chosen, FormattedExample Rejected);

/// <summary>A tokenized preference pair; the targets of each half mark its completion tokens.</summary>
public sealed record TokenizedPair(TokenizedExample Chosen, TokenizedExample Rejected);

/// <summary>
/// The files preference data travels in between steps. Formatted: <c>preference-train.jsonl</c> /
/// <c>preference-validation.jsonl</c>, one <c>{"chosen": {text, assistant_spans, content_spans},
/// "rejected": {...}}</c> per line. Tokenized: <c>preference-train.bin</c> /
/// <c>preference-validation.bin</c> in <see cref="TokenizedDatasetFile"/>'s format, the chosen and
/// the rejected half of each pair as consecutive examples.
/// </summary>
public static class PreferenceDatasetFiles
{
    /// <summary>File names, formatted and tokenized.</summary>
    public const string TrainJsonl = "preference-train.jsonl", ValidationJsonl = "preference-validation.jsonl",
        TrainBin = "preference-train.bin", ValidationBin = "preference-validation.bin";

    /// <summary>Writes formatted pairs atomically, one JSON object per line.</summary>
    public static void WriteFormatted(string path, IEnumerable<FormattedPair> pairs) =>
        AtomicFile.Write(path, s =>
        {
            var options = new JsonWriterOptions { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            foreach (var p in pairs)
            {
                using (var w = new Utf8JsonWriter(s, options))
                {
                    w.WriteStartObject();
                    w.WritePropertyName("chosen");
                    FormattedDatasetFile.WriteExample(w, p.Chosen);
                    w.WritePropertyName("rejected");
                    FormattedDatasetFile.WriteExample(w, p.Rejected);
                    w.WriteEndObject();
                }
                s.WriteByte((byte)'\n');
            }
        });

    /// <summary>Reads formatted pairs with their line numbers; a malformed line is an error naming the file and line.</summary>
    public static IEnumerable<(FormattedPair Pair, int Line)> ReadFormatted(string path)
    {
        var lineNo = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0) continue;
            FormattedPair pair;
            try
            {
                using var doc = JsonDocument.Parse(line);
                pair = new FormattedPair(FormattedDatasetFile.ReadExample(doc.RootElement.GetProperty("chosen")),
                    FormattedDatasetFile.ReadExample(doc.RootElement.GetProperty("rejected")));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new FineTuneException("FT1901", $"Formatted preference line is malformed ({e.Message}). Delete the file and rebuild.", path, lineNo, 1);
            }
            yield return (pair, lineNo);
        }
    }

    /// <summary>Writes tokenized pairs (chosen, rejected, chosen, ...) atomically.</summary>
    public static void WriteTokenized(string path, IReadOnlyList<TokenizedPair> pairs) =>
        TokenizedDatasetFile.Write(path, [.. pairs.SelectMany(p => new[] { p.Chosen, p.Rejected })]);

    /// <summary>Reads tokenized pairs; an odd number of examples means the file is not a preference file.</summary>
    public static IReadOnlyList<TokenizedPair> ReadTokenized(string path)
    {
        var examples = TokenizedDatasetFile.Read(path);
        if (examples.Count % 2 != 0)
            throw new FineTuneException("FT3006", $"Tokenized dataset is unreadable: a preference file holds pairs, but it has {examples.Count} examples. Delete it and rebuild.", path);
        return [.. Enumerable.Range(0, examples.Count / 2).Select(i => new TokenizedPair(examples[2 * i], examples[2 * i + 1]))];
    }
}
