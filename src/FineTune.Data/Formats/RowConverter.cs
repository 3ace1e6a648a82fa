using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Data.Readers;

namespace FineTune.Data.Formats;

/// <summary>Turns rows of the JSON-shaped formats (alpaca, sharegpt, messages, text) into conversations.</summary>
internal static class RowConverter
{
    public static Conversation Convert(DatasetRow row, DatasetFormat format) => format switch
    {
        DatasetFormat.Alpaca => Alpaca(row),
        DatasetFormat.ShareGpt => ShareGpt(row),
        DatasetFormat.Messages => Messages(row),
        DatasetFormat.Text => Conversation.FromRawText(RowFields.RequiredString(row, "text", "text"), row.File, row.Line),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "columns rows are converted by ColumnsFormat"),
    };

    private static Conversation Alpaca(DatasetRow row)
    {
        var instruction = RowFields.RequiredString(row, "instruction", "alpaca");
        var input = RowFields.OptionalString(row, "input");
        var output = RowFields.RequiredString(row, "output", "alpaca");
        var system = RowFields.OptionalString(row, "system");
        var messages = new List<Message>();
        if (!string.IsNullOrEmpty(system)) messages.Add(new Message(Role.System, system));
        // The input is the instruction's context; a blank line keeps the two apart, as in Alpaca's own prompt.
        messages.Add(new Message(Role.User, string.IsNullOrEmpty(input) ? instruction : $"{instruction}\n\n{input}"));
        messages.Add(new Message(Role.Assistant, output));
        return new Conversation(messages, row.File, row.Line);
    }

    private static Conversation ShareGpt(DatasetRow row)
    {
        var turns = RowFields.RequiredArray(row, "conversations", "sharegpt");
        var messages = new List<Message>();
        var i = 0;
        foreach (var turn in turns.EnumerateArray())
        {
            var from = RowFields.NestedString(row, turn, "conversations", i, "from");
            var value = RowFields.NestedString(row, turn, "conversations", i, "value");
            var role = from.ToLowerInvariant() switch
            {
                "system" => Role.System,
                "human" or "user" => Role.User,
                "gpt" or "assistant" => Role.Assistant,
                _ => throw new FineTuneException(DataErrors.UnknownRole,
                    $"conversations[{i}].from is '{from}'; expected system, human, user, gpt or assistant.", row.File, row.Line, 1),
            };
            messages.Add(new Message(role, value));
            i++;
        }
        return new Conversation(messages, row.File, row.Line);
    }

    private static Conversation Messages(DatasetRow row)
    {
        var items = RowFields.RequiredArray(row, "messages", "messages");
        var messages = new List<Message>();
        var i = 0;
        foreach (var item in items.EnumerateArray())
        {
            var roleName = RowFields.NestedString(row, item, "messages", i, "role");
            var content = RowFields.NestedString(row, item, "messages", i, "content");
            var role = roleName switch
            {
                "system" => Role.System,
                "user" => Role.User,
                "assistant" => Role.Assistant,
                _ => throw new FineTuneException(DataErrors.UnknownRole,
                    $"messages[{i}].role is '{roleName}'; expected system, user or assistant.", row.File, row.Line, 1),
            };
            messages.Add(new Message(role, content));
            i++;
        }
        return new Conversation(messages, row.File, row.Line);
    }

    /// <summary>Guesses the format of a dataset without <c>Format</c> metadata from its first row's fields.</summary>
    public static DatasetFormat Infer(DatasetRow row)
    {
        var names = RowFields.Names(row);
        if (names.Contains("conversations")) return DatasetFormat.ShareGpt;
        if (names.Contains("messages")) return DatasetFormat.Messages;
        if (names.Contains("instruction") && names.Contains("output")) return DatasetFormat.Alpaca;
        if (names.Contains("text")) return DatasetFormat.Text;
        throw new FineTuneException(DataErrors.UnknownFormat,
            $"Cannot tell the dataset's format from its fields ({string.Join(", ", names)}); set Format to one of {string.Join(", ", DatasetFormats.Names)} (columns with Prompt and Response for any table).",
            row.File, row.Line, 1);
    }
}
