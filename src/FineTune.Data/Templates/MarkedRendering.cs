using System.Text;
using FineTune.Core.Datasets;
using FineTune.Data.Jinja;

namespace FineTune.Data.Templates;

/// <summary>
/// Finds where each message's content lands in a Jinja template's output. The template is rendered
/// a second time with every content wrapped in private-use marker characters (outside any leading
/// or trailing whitespace, so <c>trim</c> and <c>strip()</c> act as on the real text); removing the
/// markers must give back the real rendering character for character, or the positions are not
/// trusted. The markers carry the message's index, so templates that move a message (a system
/// prompt folded into the first user turn) are followed too.
/// </summary>
internal static class MarkedRendering
{
    private const char Open = '\uE000', Close = '\uE001', IndexBase = '\uE100', IndexLast = '\uE7FF';

    /// <summary>One place a message's content was written: its index in the conversation and its range in the real text.</summary>
    public readonly record struct Occurrence(int Message, int Start, int End);

    public static bool IsMarker(char c) => c is Open or Close || c is >= IndexBase and <= IndexLast;

    /// <summary>Why the contents cannot be marked, or null when they can.</summary>
    public static string? CannotMark(IReadOnlyList<Message> messages)
    {
        if (messages.Count > IndexLast - IndexBase) return $"a conversation of {messages.Count} messages is too long to locate its replies";
        var bad = messages.FirstOrDefault(m => m.Content.Any(IsMarker));
        return bad is null ? null : "a message contains Unicode private-use characters U+E000-U+E7FF, which locating the replies relies on";
    }

    public static List<object?> Messages(IReadOnlyList<Message> messages, bool marked) =>
        messages.Select((m, i) => (object?)new Dictionary<string, object?>
        {
            ["role"] = m.Role.ToString().ToLowerInvariant(),
            ["content"] = marked ? Mark(m.Content, i) : m.Content,
        }).ToList();

    private static string Mark(string content, int index)
    {
        var a = 0;
        while (a < content.Length && Lexer.IsJsSpace(content[a])) a++;
        var b = content.Length;
        while (b > a && Lexer.IsJsSpace(content[b - 1])) b--;
        return content[..a] + Open + (char)(IndexBase + index) + content[a..b] + Close + content[b..];
    }

    /// <summary>
    /// The occurrences of each message's content in <paramref name="real"/>, given the marked
    /// rendering; null when removing the markers does not give back <paramref name="real"/>.
    /// </summary>
    public static List<Occurrence>? Locate(string marked, string real)
    {
        var text = new StringBuilder(real.Length);
        var found = new List<Occurrence>();
        var open = new Stack<(int Message, int Start)>();
        for (var i = 0; i < marked.Length; i++)
        {
            var c = marked[i];
            if (c == Open && i + 1 < marked.Length && marked[i + 1] is >= IndexBase and <= IndexLast)
            {
                open.Push((marked[++i] - IndexBase, text.Length));
                continue;
            }
            if (c == Close)
            {
                if (open.Count == 0) return null;
                var (message, start) = open.Pop();
                found.Add(new Occurrence(message, start, text.Length));
                continue;
            }
            if (IsMarker(c)) return null;
            text.Append(c);
        }
        if (open.Count > 0 || !text.Equals(real)) return null;
        found.Sort((x, y) => x.Start != y.Start ? x.Start.CompareTo(y.Start) : x.End.CompareTo(y.End));
        return found;
    }

    /// <summary>The content spans (dataset text, where special-token spellings stay plain text).</summary>
    public static List<TextSpan> ContentSpans(IEnumerable<Occurrence> occurrences) =>
        [.. occurrences.Where(o => o.End > o.Start).Select(o => new TextSpan(o.Start, o.End))];
}
