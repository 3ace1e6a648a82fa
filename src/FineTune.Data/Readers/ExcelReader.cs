using ClosedXML.Excel;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Readers;

/// <summary>
/// Reads .xlsx workbooks: the first used row of a sheet is the header. Without a <c>Sheet</c>
/// every non-empty sheet is read, so no rows are left out by accident.
/// </summary>
internal static class ExcelReader
{
    public static IEnumerable<DatasetRow> Read(string path, string? sheetName)
    {
        using var workbook = OpenWorkbook(path);
        IEnumerable<IXLWorksheet> sheets = workbook.Worksheets;
        if (sheetName is not null)
        {
            if (!workbook.Worksheets.TryGetWorksheet(sheetName, out var sheet))
                throw new FineTuneException(DataErrors.SheetNotFound,
                    $"Workbook has no sheet '{sheetName}'; its sheets are: {string.Join(", ", workbook.Worksheets.Select(s => s.Name))}.", path);
            sheets = [sheet];
        }
        var rows = new List<DatasetRow>();
        foreach (var sheet in sheets) rows.AddRange(ReadSheet(path, sheet));
        return rows;
    }

    private static XLWorkbook OpenWorkbook(string path)
    {
        try
        {
            return new XLWorkbook(path);
        }
        catch (Exception e) when (e is not FineTuneException and (IOException or InvalidDataException or System.IO.FileFormatException or ArgumentException or InvalidOperationException))
        {
            throw new FineTuneException(DataErrors.UnsupportedFile, $"Cannot open the workbook ({e.Message}); save it as an Excel .xlsx file.", path, 0, 0, e);
        }
    }

    private static IEnumerable<DatasetRow> ReadSheet(string path, IXLWorksheet sheet)
    {
        var used = sheet.RangeUsed();
        if (used is null) yield break;
        var headerRow = used.FirstRow();
        var firstColumn = used.FirstColumn().ColumnNumber();
        var header = headerRow.Cells().Select(c => c.GetFormattedString().Trim()).ToList();
        for (var i = 0; i < header.Count; i++)
        {
            if (header[i].Length == 0)
                throw new FineTuneException(DataErrors.MissingField,
                    $"Sheet '{sheet.Name}': column {i + 1} of the header row is empty; every column needs a name.", path, headerRow.RowNumber(), firstColumn + i);
            if (header.IndexOf(header[i]) != i)
                throw new FineTuneException(DataErrors.MalformedCsv, $"Sheet '{sheet.Name}': column '{header[i]}' appears twice in the header.", path, headerRow.RowNumber(), firstColumn + i);
        }
        foreach (var row in used.Rows().Skip(1))
        {
            var cells = new Dictionary<string, string>(header.Count, StringComparer.Ordinal);
            for (var i = 0; i < header.Count; i++) cells[header[i]] = row.Cell(i + 1).GetFormattedString();
            if (cells.Values.All(string.IsNullOrWhiteSpace)) continue;
            yield return DatasetRow.FromCells(path, row.RowNumber(), sheet.Name, cells);
        }
    }
}
