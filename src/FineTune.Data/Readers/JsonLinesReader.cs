using System.Text;
using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Readers;

/// <summary>Streams JSON Lines: one JSON object per line, blank lines skipped, UTF-8 with or without BOM.</summary>
internal static class JsonLinesReader
{
    /// <summary>
    /// The file's objects in order. A line that is not a JSON object goes to <paramref name="badLine"/>
    /// when given, and the next line is read; otherwise it is thrown.
    /// </summary>
    public static IEnumerable<DatasetRow> Read(string path, Action<FineTuneException>? badLine = null)
    {
        using var reader = new StreamReader(path, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var (element, error) = Parse(line, lineNo, path);
            if (error is not null)
            {
                if (badLine is null) throw error;
                badLine(error);
                continue;
            }
            yield return DatasetRow.FromJson(path, lineNo, element);
        }
    }

    private static (JsonElement Element, FineTuneException? Error) Parse(string line, int lineNo, string path)
    {
        JsonElement element;
        try
        {
            using var doc = JsonDocument.Parse(line);
            element = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            var column = (int)(e.BytePositionInLine ?? 0) + 1;
            return (default, new FineTuneException(DataErrors.MalformedJsonLine,
                $"Line {lineNo} is not valid JSON ({FirstSentence(e.Message)}); each line of a .jsonl file must be one JSON object.", path, lineNo, column, e));
        }
        if (element.ValueKind != JsonValueKind.Object)
            return (default, new FineTuneException(DataErrors.WrongType,
                $"Line {lineNo} is a JSON {element.ValueKind.ToString().ToLowerInvariant()}; expected a JSON object.", path, lineNo, 1));
        return (element, null);
    }

    /// <summary>System.Text.Json messages append "LineNumber: ... | BytePositionInLine: ..." which the location already says.</summary>
    internal static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd(' ', '.');
    }
}
