using FineTune.Core.Diagnostics;

namespace FineTune.Data.Templates;

/// <summary>
/// Parses a custom template file in the tutorials' style, e.g.
/// <code>
/// {SYSTEM}
/// USER: {INPUT}
/// ASSISTANT: {OUTPUT}
/// </code>
/// The text up to <c>{SYSTEM}</c> and the whitespace after it frame the system prompt; the rest of
/// the text before <c>{INPUT}</c> starts each user turn; the text between <c>{INPUT}</c> and
/// <c>{OUTPUT}</c> starts each reply; <c>&lt;/s&gt;</c> ends each reply (so the model learns to
/// stop) followed by the text after <c>{OUTPUT}</c>. Without <c>{SYSTEM}</c> a system prompt goes
/// in front of the first user message.
/// </summary>
internal static partial class CustomTemplateParser
{
    private const string System = "{SYSTEM}", Input = "{INPUT}", Output = "{OUTPUT}";
    private const string EndOfReply = BuiltInTemplates.GenericEos;

    // Spellings of special tokens (<|im_end|>, <start_of_turn>, </s>): a custom template that writes
    // one relies on the tokenizer having it as a token.
    [System.Text.RegularExpressions.GeneratedRegex(@"<\|[^<>|\s]+\|>|</?[a-z_]+>")]
    private static partial System.Text.RegularExpressions.Regex TokenSpelling();

    public static TemplateLayout Parse(string text, string path)
    {
        text = text.Replace("\r\n", "\n");
        foreach (var placeholder in new[] { Input, Output })
        {
            if (!text.Contains(placeholder, StringComparison.Ordinal))
                throw new FineTuneException("FT1021",
                    $"Custom chat template has no {placeholder} placeholder; a template needs {Input} where the user's message goes and {Output} where the reply goes ({System} is optional).", path, 1, 1);
        }
        foreach (var placeholder in new[] { System, Input, Output })
        {
            var first = text.IndexOf(placeholder, StringComparison.Ordinal);
            if (first >= 0 && text.IndexOf(placeholder, first + 1, StringComparison.Ordinal) >= 0)
                throw Misplaced(text, text.IndexOf(placeholder, first + 1, StringComparison.Ordinal), $"{placeholder} appears more than once", path);
        }
        int sys = text.IndexOf(System, StringComparison.Ordinal), input = text.IndexOf(Input, StringComparison.Ordinal), output = text.IndexOf(Output, StringComparison.Ordinal);
        if (output < input) throw Misplaced(text, output, $"{Output} must come after {Input}", path);
        if (sys > input) throw Misplaced(text, sys, $"{System} must come before {Input}", path);

        var head = text[..input];
        string? systemPrefix = null, systemSuffix = "", userPrefix = head;
        if (sys >= 0)
        {
            systemPrefix = head[..sys];
            var rest = head[(sys + System.Length)..];
            var ws = rest.Length - rest.TrimStart().Length;
            systemSuffix = rest[..ws];
            userPrefix = rest[ws..];
        }
        var assistantPrefix = text[(input + Input.Length)..output];
        var tail = text[(output + Output.Length)..];

        var stops = new List<string> { EndOfReply };
        if (userPrefix.Trim() is { Length: > 0 } userMarker) stops.Add(userMarker);
        return new TemplateLayout(
            BosText: null,
            SystemPrefix: systemPrefix, SystemSuffix: systemSuffix,
            UserPrefix: userPrefix, UserSuffix: "",
            AssistantPrefix: assistantPrefix, AssistantEnd: EndOfReply, AssistantSuffix: tail,
            DefaultSystem: null, SystemSeparator: "\n\n", EosText: EndOfReply,
            StopTokens: stops,
            RequiredTokens: [EndOfReply, .. TokenSpelling().Matches(text).Select(m => m.Value).Where(t => t != EndOfReply).Distinct()],
            UsesModelEos: true);
    }

    private static FineTuneException Misplaced(string text, int index, string what, string path)
    {
        var line = 1 + text.AsSpan(0, index).Count('\n');
        var column = index - (text.LastIndexOf('\n', Math.Max(0, index - 1)) + 1) + 1;
        return new FineTuneException("FT1022", $"Custom chat template: {what}.", path, line, column);
    }
}
