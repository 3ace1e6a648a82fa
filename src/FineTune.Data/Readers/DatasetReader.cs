using FineTune.Core.Diagnostics;

namespace FineTune.Data.Readers;

/// <summary>Picks the reader for a dataset file by its extension and streams its rows.</summary>
public static class DatasetReader
{
    /// <summary>The file extensions datasets may have.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".xlsx"];

    /// <summary>
    /// Streams the rows of <paramref name="path"/>; for workbooks, of <paramref name="sheet"/> or of
    /// every sheet when it is null. An empty file is an error, never zero rows. With
    /// <paramref name="badLine"/>, a line of a <c>.jsonl</c> file that is not a JSON object goes there and
    /// the next line is read (each line stands alone); without it, it is thrown.
    /// </summary>
    public static IEnumerable<DatasetRow> Read(string path, string? sheet = null, Action<FineTuneException>? badLine = null)
    {
        var sawBadLine = false;
        if (!File.Exists(path))
            throw new FineTuneException(DataErrors.FileNotFound, $"Dataset file not found: {path}.", path);
        var rows = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" or ".ndjson" => JsonLinesReader.Read(path, badLine is null ? null : e => { sawBadLine = true; badLine(e); }),
            ".json" => JsonArrayReader.Read(path),
            ".csv" => DelimitedReader.Read(path, ','),
            ".tsv" => DelimitedReader.Read(path, '\t'),
            ".xlsx" => ExcelReader.Read(path, sheet),
            var ext => throw new FineTuneException(DataErrors.UnsupportedFile,
                $"Unsupported dataset file type '{ext}'; use one of {string.Join(", ", Extensions)}.", path),
        };
        return NonEmpty(rows, path, () => sawBadLine);
    }

    private static IEnumerable<DatasetRow> NonEmpty(IEnumerable<DatasetRow> rows, string path, Func<bool> sawBadLine)
    {
        var any = false;
        foreach (var row in rows)
        {
            any = true;
            yield return row;
        }
        // A file whose every line was reported bad is not empty: its errors already say what is wrong.
        if (!any && !sawBadLine())
            throw new FineTuneException(DataErrors.EmptyFile, "Dataset file has no rows; expected at least one example.", path, 1, 1);
    }
}
