using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Data.Readers;

namespace FineTune.Data.Formats;

/// <summary>
/// One preference row: the prompt (a conversation ending with a user turn) and the two completions
/// (assistant turns), as TRL's <c>DPOTrainer</c>/<c>ORPOTrainer</c> take them.
/// </summary>
public sealed record PreferenceRow(IReadOnlyList<Message> Prompt, IReadOnlyList<Message> Chosen, IReadOnlyList<Message> Rejected, string? SourceFile, int SourceLine)
{
    /// <summary>The prompt followed by the chosen completion.</summary>
    public Conversation ChosenConversation => new([.. Prompt, .. Chosen], SourceFile, SourceLine);
    /// <summary>The prompt followed by the rejected completion.</summary>
    public Conversation RejectedConversation => new([.. Prompt, .. Rejected], SourceFile, SourceLine);
}

/// <summary>
/// Reads TRL's preference layout: <c>prompt</c>, <c>chosen</c>, <c>rejected</c>, each either text
/// (a user message, assistant replies) or a list of <c>{"role", "content"}</c> messages, and an
/// optional <c>system</c> field; or, as TRL's implicit-prompt form, only <c>chosen</c> and <c>rejected</c>
/// conversations whose shared leading messages are the prompt. In a table (CSV, xlsx) the three are text columns.
/// </summary>
internal static class PreferenceFormat
{
    public static PreferenceRow Convert(DatasetRow row, string? defaultSystem)
    {
        var (prompt, chosen, rejected) = ImplicitPrompt(row) ??
            (Messages(row, "prompt", Role.User), Messages(row, "chosen", Role.Assistant), Messages(row, "rejected", Role.Assistant));
        var system = RowFields.OptionalString(row, "system") ?? defaultSystem;
        if (!string.IsNullOrEmpty(system) && !prompt.Any(m => m.Role == Role.System)) prompt.Insert(0, new Message(Role.System, system));
        var lastPrompt = prompt.LastOrDefault(m => m.Role != Role.System);
        if (lastPrompt?.Role != Role.User)
            throw Bad(row, "'prompt' must end with a user message: the completions answer it.");
        if (prompt.First(m => m.Role != Role.System).Role != Role.User)
            throw Bad(row, "'prompt' must start with a user message (after an optional system message).");
        foreach (var (name, list) in new[] { ("chosen", chosen), ("rejected", rejected) })
            if (list.Count == 0 || list.Any(m => m.Role != Role.Assistant))
                throw Bad(row, $"'{name}' must be one or more assistant messages: it is the completion of the prompt.");
        return new PreferenceRow(prompt, chosen, rejected, row.File, row.Line);
    }

    /// <summary>
    /// TRL's implicit prompt (<c>maybe_extract_prompt</c>): a JSON row without <c>prompt</c> whose
    /// <c>chosen</c> and <c>rejected</c> are whole conversations; the messages they share from the start
    /// are the prompt, the rest of each is its completion. Null for any other row.
    /// </summary>
    private static (List<Message>, List<Message>, List<Message>)? ImplicitPrompt(DatasetRow row)
    {
        if (row.Json is not { } json || json.TryGetProperty("prompt", out var p) && p.ValueKind != JsonValueKind.Null) return null;
        if (!json.TryGetProperty("chosen", out var c) || c.ValueKind != JsonValueKind.Array) return null;
        if (!json.TryGetProperty("rejected", out var r) || r.ValueKind != JsonValueKind.Array) return null;
        var chosen = Messages(row, "chosen", Role.Assistant);
        var rejected = Messages(row, "rejected", Role.Assistant);
        var shared = 0;
        while (shared < Math.Min(chosen.Count, rejected.Count) && chosen[shared] == rejected[shared]) shared++;
        if (shared == 0)
            throw Bad(row, "The row has no 'prompt', and its 'chosen' and 'rejected' conversations do not start with the same messages: add a 'prompt', or start both with the prompt's messages.");
        if (shared == chosen.Count || shared == rejected.Count)
            throw Bad(row, "The row has no 'prompt', and one of its 'chosen' and 'rejected' conversations is the start of the other: nothing is left to compare.");
        return (chosen[..shared], chosen[shared..], rejected[shared..]);
    }

    private static List<Message> Messages(DatasetRow row, string field, Role textRole)
    {
        if (row.Json is not { } json)
            return [new Message(textRole, RowFields.RequiredString(row, field, "preference"))];
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
            return [new Message(textRole, RowFields.RequiredString(row, field, "preference"))];
        if (value.ValueKind == JsonValueKind.String) return [new Message(textRole, value.GetString()!)];
        if (value.ValueKind != JsonValueKind.Array)
            throw Bad(row, $"'{field}' is a JSON {value.ValueKind.ToString().ToLowerInvariant()}; it must be text or a list of {{\"role\", \"content\"}} messages.");
        var messages = new List<Message>();
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            var roleName = RowFields.NestedString(row, item, field, i, "role");
            var content = RowFields.NestedString(row, item, field, i, "content");
            var role = roleName switch
            {
                "system" => Role.System,
                "user" => Role.User,
                "assistant" => Role.Assistant,
                _ => throw new FineTuneException(DataErrors.UnknownRole, $"{field}[{i}].role is '{roleName}'; expected system, user or assistant.", row.File, row.Line, 1),
            };
            messages.Add(new Message(role, content));
            i++;
        }
        return messages;
    }

    private static FineTuneException Bad(DatasetRow row, string message) =>
        new(DataErrors.BadPreferenceRow, $"{row.SheetPrefix}{message}", row.File, row.Line, 1);
}
