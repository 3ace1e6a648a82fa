using System.Text.Json;

namespace FineTune.Data.Readers;

/// <summary>
/// One record of a dataset file: a JSON object (JSONL, JSON array) or a table row (CSV, TSV,
/// xlsx), with its location for diagnostics.
/// </summary>
public sealed class DatasetRow
{
    private DatasetRow(string file, int line, string? sheet, JsonElement? json, IReadOnlyDictionary<string, string>? cells)
    {
        File = file;
        Line = line;
        Sheet = sheet;
        Json = json;
        Cells = cells;
    }

    /// <summary>A row from a JSON source; <paramref name="json"/> must outlive its document (cloned).</summary>
    public static DatasetRow FromJson(string file, int line, JsonElement json) => new(file, line, null, json, null);

    /// <summary>A row from a table; cells are keyed by header name.</summary>
    public static DatasetRow FromCells(string file, int line, string? sheet, IReadOnlyDictionary<string, string> cells) => new(file, line, sheet, null, cells);

    /// <summary>The dataset file (full path) the row came from.</summary>
    public string File { get; }

    /// <summary>1-based line (JSONL/JSON/CSV) or row number (xlsx).</summary>
    public int Line { get; }

    /// <summary>The worksheet, for xlsx rows.</summary>
    public string? Sheet { get; }

    /// <summary>The JSON value of the row, for JSON sources.</summary>
    public JsonElement? Json { get; }

    /// <summary>The cells by column name, for table sources.</summary>
    public IReadOnlyDictionary<string, string>? Cells { get; }

    /// <summary>Where the row is, for messages: "sheet 'Train', " for workbooks, else empty.</summary>
    public string SheetPrefix => Sheet is null ? "" : $"sheet '{Sheet}', ";
}
