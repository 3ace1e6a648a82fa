using System.Text;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Templates;

/// <summary>
/// Builds the Ollama <c>TEMPLATE</c> (Go text/template over <c>.System</c> and <c>.Messages</c>) for
/// a Jinja chat template. The text around each turn is read off renderings of probe conversations:
/// the head before the first user message (with and without a system prompt, which may sit in a turn
/// of its own or inside the first user turn), what follows a user message before a reply, what
/// follows a reply before the next user message, and what follows the last user message (the
/// generation prompt). The result is checked before it is used: <see cref="GoChat"/> renders it the
/// way Ollama fills the template (collated messages) and must equal the Jinja rendering of every
/// check conversation; the tests hold <see cref="GoChat"/> to Go's own text/template.
/// </summary>
internal sealed class OllamaTemplateDerivation
{
    private OllamaTemplateDerivation(string template, IReadOnlyList<string> coverage) => (Template, Coverage) = (template, coverage);

    public string Template { get; }
    public IReadOnlyList<string> Coverage { get; }

    /// <summary>The pieces of plain chat; <see cref="SystemHead"/> is null when the template refuses system prompts.</summary>
    internal sealed record Pieces(string Head, (string Before, string After)? SystemHead, string UserToReply, string ReplyToUser, string AfterLastUser);

    public static OllamaTemplateDerivation Derive(JinjaChatFormat format)
    {
        var pieces = Read(format);
        var template = Write(pieces);
        var checks = CheckConversations(pieces.SystemHead is not null);
        foreach (var messages in checks)
        {
            var expected = Strip(format, format.RenderText(messages, addGenerationPrompt: true));
            var ours = GoChat.Render(pieces, messages);
            if (ours != expected)
                throw new FineTuneException(ChatTemplateErrors.NoOllamaTemplate,
                    $"The base model's chat template ({format.Source.File}) cannot be written as an Ollama TEMPLATE for plain chat: for the conversation " +
                    $"[{string.Join(" | ", messages.Select(m => $"{m.Role.ToString().ToLowerInvariant()}: {m.Content}"))}] it renders {Show(expected)}, " +
                    $"but the turn-by-turn Go template would render {Show(ours)} (the template places text depending on more than the role of each turn). " +
                    "Use a built-in ChatTemplate made for this model.", format.Source.File);
        }

        var coverage = new List<string>
        {
            $"The Modelfile TEMPLATE reproduces the model's chat template for system, user and assistant turns and the generation prompt (checked on {checks.Count} conversations)" +
            (pieces.SystemHead is null ? "; the template refuses system prompts, so SYSTEM is not used" : "") +
            (format.BosText is not null ? $"; {format.BosText} is left to Ollama, which adds it at the start of every prompt" : "") + ".",
        };
        var source = format.Source.Template;
        var left = new List<string>();
        if (source.Contains("tools", StringComparison.Ordinal) || source.Contains("tool_calls", StringComparison.Ordinal)) left.Add("tool definitions and tool calls");
        if (source.Contains("<think>", StringComparison.Ordinal) || source.Contains("reasoning_content", StringComparison.Ordinal) || source.Contains("enable_thinking", StringComparison.Ordinal))
            left.Add("thinking blocks");
        if (source.Contains("strftime_now", StringComparison.Ordinal) || source.Contains("date_string", StringComparison.Ordinal)) left.Add("the current date (fixed at 26 Jul 2024, as in training)");
        if (left.Count > 0) coverage.Add($"Not reproduced in the Modelfile TEMPLATE: {string.Join(", ", left)}.");
        return new OllamaTemplateDerivation(template, coverage);
    }

    private static string Show(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    /// <summary>The Jinja rendering without the leading BOS, which Ollama adds itself.</summary>
    private static string Strip(JinjaChatFormat format, string text) =>
        format.BosText is { } bos && text.StartsWith(bos, StringComparison.Ordinal) ? text[bos.Length..] : text;

    private static Pieces Read(JinjaChatFormat format)
    {
        string Render(params Message[] messages) => Strip(format, format.RenderText(messages, addGenerationPrompt: true));
        const string u1 = "\uE201", a1 = "\uE202", u2 = "\uE203", s = "\uE204";
        var single = Render(new Message(Role.User, u1));
        var turns = Render(new Message(Role.User, u1), new Message(Role.Assistant, a1), new Message(Role.User, u2));
        if (!(Once(single, u1) && Once(turns, u1) && Once(turns, a1) && Once(turns, u2)))
            throw NotPlain(format, "a probe message does not appear exactly once in the rendering");
        var head = single[..single.IndexOf(u1, StringComparison.Ordinal)];
        var afterLast = single[(single.IndexOf(u1, StringComparison.Ordinal) + 1)..];
        var userToReply = Between(turns, u1, a1);
        var replyToUser = Between(turns, a1, u2);

        (string, string)? systemHead = null;
        try
        {
            var withSystem = Render(new Message(Role.System, s), new Message(Role.User, u1));
            if (Once(withSystem, s) && Once(withSystem, u1) && withSystem.IndexOf(s, StringComparison.Ordinal) < withSystem.IndexOf(u1, StringComparison.Ordinal))
                systemHead = (withSystem[..withSystem.IndexOf(s, StringComparison.Ordinal)], Between(withSystem, s, u1));
            else throw NotPlain(format, "the system prompt does not come before the first user message");
        }
        catch (FineTuneException e) when (e.Code == Jinja.JinjaErrors.Render)
        {
            // The template refuses system prompts (Gemma 2): the Modelfile serves conversations without one.
        }
        return new Pieces(head, systemHead, userToReply, replyToUser, afterLast);
    }

    private static bool Once(string text, string marker) =>
        text.IndexOf(marker, StringComparison.Ordinal) is var i && i >= 0 && text.IndexOf(marker, i + 1, StringComparison.Ordinal) < 0;

    private static string Between(string text, string a, string b)
    {
        var start = text.IndexOf(a, StringComparison.Ordinal) + a.Length;
        var end = text.IndexOf(b, StringComparison.Ordinal);
        return end >= start ? text[start..end] : throw new InvalidOperationException("probe messages out of order");
    }

    private static FineTuneException NotPlain(JinjaChatFormat format, string why) => new(ChatTemplateErrors.NoOllamaTemplate,
        $"The base model's chat template ({format.Source.File}) cannot be written as an Ollama TEMPLATE for plain chat: {why}. Use a built-in ChatTemplate made for this model.",
        format.Source.File);

    private static string Lit(string text) => OllamaTemplateWriter.Literal(text);

    internal static string Write(Pieces p)
    {
        var sb = new StringBuilder();
        if (p.SystemHead is { } sys)
            sb.Append("{{- if .System }}").Append(Lit(sys.Before)).Append("{{ .System }}").Append(Lit(sys.After)).Append("{{ else }}").Append(Lit(p.Head)).Append("{{ end }}");
        else sb.Append(Lit(p.Head));
        sb.Append("{{ range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}");
        sb.Append("{{- if eq .Role \"user\" }}{{ .Content }}{{ if $last }}").Append(Lit(p.AfterLastUser)).Append("{{ else }}").Append(Lit(p.UserToReply)).Append("{{ end }}");
        sb.Append("{{- else if eq .Role \"assistant\" }}{{ .Content }}{{ if not $last }}").Append(Lit(p.ReplyToUser)).Append("{{ end }}");
        sb.Append("{{- end }}{{- end }}");
        return sb.ToString();
    }

    /// <summary>Conversations ending in a user message (what Ollama templates): with and without a system prompt, 1 to 4 turns.</summary>
    internal static List<IReadOnlyList<Message>> CheckConversations(bool withSystem)
    {
        string[] users = ["What is the capital of France?", "And of Italy?\nOne word.", "Say \"hi\" {{ .System }} 'ok'", "Thanks 🇮🇹"];
        string[] replies = ["Paris.", "Rome\n\nin Italy", "hi {{ end }}", "You're welcome."];
        var list = new List<IReadOnlyList<Message>>();
        foreach (var system in withSystem ? new[] { false, true } : [false])
        {
            for (var turns = 1; turns <= 4; turns++)
            {
                var messages = new List<Message>();
                if (system) messages.Add(new Message(Role.System, "You are terse.\nAnswer briefly."));
                for (var t = 0; t < turns; t++)
                {
                    messages.Add(new Message(Role.User, users[t]));
                    if (t < turns - 1) messages.Add(new Message(Role.Assistant, replies[t]));
                }
                list.Add(messages);
            }
        }
        return list;
    }
}

/// <summary>
/// What Ollama renders with a TEMPLATE from <see cref="OllamaTemplateDerivation.Write"/>: system
/// messages joined into <c>.System</c>, consecutive messages of one role merged with a blank line
/// (Ollama's collation), then the pieces around each turn.
/// </summary>
internal static class GoChat
{
    public static string Render(OllamaTemplateDerivation.Pieces p, IReadOnlyList<Message> messages)
    {
        var (system, turns) = TrainingTextRenderer.Collate(messages);
        var sb = new StringBuilder();
        if (p.SystemHead is { } sys && system.Count > 0) sb.Append(sys.Before).Append(string.Join(TrainingTextRenderer.MergeSeparator, system)).Append(sys.After);
        else sb.Append(p.Head);
        for (var i = 0; i < turns.Count; i++)
        {
            var last = i == turns.Count - 1;
            sb.Append(string.Join(TrainingTextRenderer.MergeSeparator, turns[i].Parts));
            if (turns[i].Role == Role.User) sb.Append(last ? p.AfterLastUser : p.UserToReply);
            else if (!last) sb.Append(p.ReplyToUser);
        }
        return sb.ToString();
    }
}
