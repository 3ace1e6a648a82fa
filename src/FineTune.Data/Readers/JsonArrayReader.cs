using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Readers;

/// <summary>
/// Reads a .json file holding an array of objects. The document is parsed element by element so
/// each row knows the line it starts on.
/// </summary>
internal static class JsonArrayReader
{
    public static IEnumerable<DatasetRow> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        var rows = new List<DatasetRow>();
        var reader = new Utf8JsonReader(bytes.AsSpan(start), new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var lineCounter = new LineCounter(bytes, start);
        try
        {
            if (!reader.Read())
                return rows;
            if (reader.TokenType != JsonTokenType.StartArray)
                throw new FineTuneException(DataErrors.MalformedJsonDocument,
                    "A .json dataset must be an array of objects ([{...}, {...}]); for one object per line use .jsonl.", path, lineCounter.LineOf(reader.TokenStartIndex), 1);
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var line = lineCounter.LineOf(reader.TokenStartIndex);
                using var doc = JsonDocument.ParseValue(ref reader);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new FineTuneException(DataErrors.WrongType,
                        $"Array element on line {line} is a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}; expected a JSON object.", path, line, 1);
                rows.Add(DatasetRow.FromJson(path, line, doc.RootElement.Clone()));
            }
        }
        catch (JsonException e)
        {
            var line = (int)(e.LineNumber ?? 0) + 1;
            throw new FineTuneException(DataErrors.MalformedJsonDocument,
                $"Invalid JSON on line {line} ({JsonLinesReader.FirstSentence(e.Message)}).", path, line, (int)(e.BytePositionInLine ?? 0) + 1, e);
        }
        return rows;
    }

    /// <summary>Maps byte offsets (increasing) to 1-based line numbers.</summary>
    private sealed class LineCounter(byte[] bytes, int start)
    {
        private readonly int _start = start;
        private int _offset = start, _line = 1;

        public int LineOf(long tokenStart)
        {
            var target = _start + (int)tokenStart;
            for (; _offset < target; _offset++)
                if (bytes[_offset] == (byte)'\n') _line++;
            return _line;
        }
    }
}
