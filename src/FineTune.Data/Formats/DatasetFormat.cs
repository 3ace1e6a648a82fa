using FineTune.Core.Diagnostics;

namespace FineTune.Data.Formats;

/// <summary>The layouts a <c>FineTuneDataset</c> may have (its <c>Format</c> metadata).</summary>
public enum DatasetFormat
{
    /// <summary><c>instruction</c>, optional <c>input</c>, <c>output</c>, optional <c>system</c>.</summary>
    Alpaca,
    /// <summary><c>conversations: [{from, value}]</c>.</summary>
    ShareGpt,
    /// <summary>OpenAI style <c>messages: [{role, content}]</c>.</summary>
    Messages,
    /// <summary>Raw <c>text</c> for continued pretraining.</summary>
    Text,
    /// <summary>Any table, with <c>Prompt</c>/<c>Response</c> templates over its columns.</summary>
    Columns,
    /// <summary>TRL's preference layout: <c>prompt</c>, <c>chosen</c>, <c>rejected</c> (text or <c>[{role, content}]</c>), optional <c>system</c>.</summary>
    Preference,
}

/// <summary>Parses and names <see cref="DatasetFormat"/> values.</summary>
public static class DatasetFormats
{
    /// <summary>The metadata spellings, in documentation order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["alpaca", "sharegpt", "messages", "text", "columns", "preference"];

    /// <summary>Parses a <c>Format</c> value (case-insensitive).</summary>
    public static DatasetFormat Parse(string value, string file) => value.Trim().ToLowerInvariant() switch
    {
        "alpaca" => DatasetFormat.Alpaca,
        "sharegpt" => DatasetFormat.ShareGpt,
        "messages" or "openai" => DatasetFormat.Messages,
        "text" => DatasetFormat.Text,
        "columns" => DatasetFormat.Columns,
        "preference" => DatasetFormat.Preference,
        _ => throw new FineTuneException(DataErrors.UnknownFormat, $"Unknown dataset Format '{value}'; use one of {string.Join(", ", Names)}.", file),
    };

    /// <summary>The metadata spelling of a format.</summary>
    public static string Name(DatasetFormat format) => Names[(int)format];
}
