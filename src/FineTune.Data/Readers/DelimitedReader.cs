using CsvHelper;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Readers;

/// <summary>
/// Streams CSV/TSV with a header row (RFC 4180 quoting, multi-line fields, UTF-8 with or without
/// BOM) through CsvHelper. Malformed quoting and rows with a different number of fields than the
/// header are errors: recovering would silently change or shift values.
/// </summary>
internal static class DelimitedReader
{
    public static IEnumerable<DatasetRow> Read(string path, char separator)
    {
        var options = new CsvReaderOptions
        {
            Separator = separator,
            HasHeader = true,
            SkipEmptyLines = true,
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Throw,
            FieldCountMismatch = CsvFieldCountHandling.Throw,
        };
        using var csv = CsvReader.FromFile(path, options);
        string[] header;
        try
        {
            header = [.. csv.Headers];
        }
        catch (CsvFormatException e)
        {
            throw Malformed(path, e);
        }
        if (header.Length == 0) yield break;
        var duplicate = header.GroupBy(h => h, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new FineTuneException(DataErrors.MalformedCsv, $"Column '{duplicate.Key}' appears twice in the header.", path, 1, 1);

        while (true)
        {
            try
            {
                if (!csv.Read()) yield break;
            }
            catch (CsvFormatException e)
            {
                throw Malformed(path, e, header);
            }
            var cells = new Dictionary<string, string>(header.Length, StringComparer.Ordinal);
            for (var i = 0; i < header.Length; i++) cells[header[i]] = csv.GetString(i);
            yield return DatasetRow.FromCells(path, (int)csv.LineNumber, null, cells);
        }
    }

    private static FineTuneException Malformed(string path, CsvFormatException e, string[]? header = null)
    {
        var detail = header is null ? e.Message : $"{e.Message} The header has {header.Length} columns: {string.Join(", ", header)}.";
        return new FineTuneException(DataErrors.MalformedCsv, $"Malformed CSV row: {detail}", path, (int)e.LineNumber, 1, e);
    }
}
