using System.Text;
using FineTune.Core.Datasets;

namespace FineTune.Data.Templates;

/// <summary>Renders a conversation into training text with assistant and content spans.</summary>
internal static class TrainingTextRenderer
{
    /// <summary>
    /// Message contents joined by Ollama when consecutive messages share a role, and between
    /// several system messages; using the same separator keeps training and inference prompts equal.
    /// </summary>
    public const string MergeSeparator = "\n\n";

    public static FormattedExample Render(TemplateLayout t, Conversation conversation)
    {
        var text = new StringBuilder();
        var assistant = new List<TextSpan>();
        var content = new List<TextSpan>();

        void AppendContent(IReadOnlyList<string> parts)
        {
            for (var i = 0; i < parts.Count; i++)
            {
                if (i > 0) text.Append(MergeSeparator);
                var start = text.Length;
                text.Append(parts[i]);
                if (parts[i].Length > 0) content.Add(new TextSpan(start, text.Length));
            }
        }

        text.Append(t.BosText);
        if (conversation.RawText is { } raw)
        {
            AppendContent([raw]);
            text.Append(t.EosText);
            assistant.Add(new TextSpan(0, text.Length));
            return new FormattedExample(text.ToString(), assistant, content);
        }

        var (system, turns) = Collate(conversation.Messages);
        // The default system prompt is template text, not dataset content.
        void AppendSystem()
        {
            if (system.Count > 0) AppendContent(system);
            else text.Append(t.DefaultSystem);
        }
        var hasSystem = system.Count > 0 || t.DefaultSystem is not null;

        if (t.SystemPrefix is not null && hasSystem)
        {
            text.Append(t.SystemPrefix);
            AppendSystem();
            text.Append(t.SystemSuffix);
        }
        var systemPending = t.SystemPrefix is null && hasSystem;

        foreach (var (role, parts) in turns)
        {
            if (role == Role.User)
            {
                text.Append(t.UserPrefix);
                if (systemPending)
                {
                    AppendSystem();
                    text.Append(t.SystemSeparator);
                    systemPending = false;
                }
                AppendContent(parts);
                text.Append(t.UserSuffix);
            }
            else
            {
                text.Append(t.AssistantPrefix);
                var start = text.Length;
                AppendContent(parts);
                text.Append(t.AssistantEnd);
                assistant.Add(new TextSpan(start, text.Length));
                text.Append(t.AssistantSuffix);
            }
        }
        return new FormattedExample(text.ToString(), assistant, content);
    }

    /// <summary>
    /// All system messages (rendered once, first) and the user/assistant turns with consecutive
    /// messages of one role merged, exactly as Ollama collates chat messages before templating.
    /// </summary>
    public static (List<string> System, List<(Role Role, List<string> Parts)> Turns) Collate(IReadOnlyList<Message> messages)
    {
        var system = new List<string>();
        var turns = new List<(Role Role, List<string> Parts)>();
        Role? previous = null;
        foreach (var m in messages)
        {
            if (m.Role == Role.System)
            {
                // Ollama merges consecutive system messages into one, then joins all system
                // messages with the same separator, so a flat list gives the same text.
                system.Add(m.Content);
            }
            else if (previous == m.Role) turns[^1].Parts.Add(m.Content);
            else turns.Add((m.Role, [m.Content]));
            previous = m.Role;
        }
        return (system, turns);
    }
}
