using System.Globalization;
using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Data.Readers;

namespace FineTune.Data.Formats;

/// <summary>Typed access to a row's fields with diagnostics that name the file, line and field.</summary>
internal static class RowFields
{
    /// <summary>The names of the row's fields (JSON properties or table columns).</summary>
    public static IReadOnlyList<string> Names(DatasetRow row) =>
        row.Cells is { } cells ? [.. cells.Keys] : [.. row.Json!.Value.EnumerateObject().Select(p => p.Name)];

    /// <summary>A required string field; a missing field or a non-string value is an error.</summary>
    public static string RequiredString(DatasetRow row, string field, string format) =>
        OptionalString(row, field)
        ?? throw new FineTuneException(DataErrors.MissingField,
            $"{row.SheetPrefix}Row has no '{field}' field, which the {format} format requires; its fields are: {string.Join(", ", Names(row))}.", row.File, row.Line, 1);

    /// <summary>A string field, or null when absent (or JSON null).</summary>
    public static string? OptionalString(DatasetRow row, string field)
    {
        if (row.Cells is { } cells) return cells.TryGetValue(field, out var v) ? v : null;
        if (!row.Json!.Value.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString()! : throw WrongType(row, field, "a string", value);
    }

    /// <summary>A field as display text for prompt templates: strings as-is, numbers and booleans as written.</summary>
    public static string? Text(DatasetRow row, string field)
    {
        if (row.Cells is { } cells) return cells.TryGetValue(field, out var v) ? v : null;
        if (!row.Json!.Value.TryGetProperty(field, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
            _ => throw WrongType(row, field, "a string, number or boolean", value),
        };
    }

    /// <summary>A required JSON array field (sharegpt/messages); tables cannot hold one.</summary>
    public static JsonElement RequiredArray(DatasetRow row, string field, string format)
    {
        if (row.Json is not { } json)
            throw new FineTuneException(DataErrors.WrongType,
                $"{row.SheetPrefix}The {format} format needs JSON input (.jsonl or .json) with a '{field}' array; a table row cannot hold one.", row.File, row.Line, 1);
        if (!json.TryGetProperty(field, out var value))
            throw new FineTuneException(DataErrors.MissingField,
                $"Row has no '{field}' field, which the {format} format requires; its fields are: {string.Join(", ", Names(row))}.", row.File, row.Line, 1);
        return value.ValueKind == JsonValueKind.Array ? value : throw WrongType(row, field, "an array", value);
    }

    /// <summary>A string property of an object inside a row (e.g. a message's <c>content</c>).</summary>
    public static string NestedString(DatasetRow row, JsonElement item, string container, int index, string field)
    {
        if (item.ValueKind != JsonValueKind.Object)
            throw WrongType(row, $"{container}[{index}]", "an object", item);
        if (!item.TryGetProperty(field, out var value))
            throw new FineTuneException(DataErrors.MissingField, $"{container}[{index}] has no '{field}' field.", row.File, row.Line, 1);
        return value.ValueKind == JsonValueKind.String ? value.GetString()! : throw WrongType(row, $"{container}[{index}].{field}", "a string", value);
    }

    private static FineTuneException WrongType(DatasetRow row, string field, string expected, JsonElement actual) =>
        new(DataErrors.WrongType,
            $"Field '{field}' is a JSON {actual.ValueKind.ToString().ToLowerInvariant()} but must be {expected}.", row.File, row.Line, 1);

    internal static string Invariant(int n) => n.ToString(CultureInfo.InvariantCulture);
}
