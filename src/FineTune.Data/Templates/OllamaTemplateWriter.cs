using System.Text;

namespace FineTune.Data.Templates;

/// <summary>
/// Generates the Ollama <c>TEMPLATE</c> (Go text/template) from a <see cref="TemplateLayout"/>.
/// Ollama (0.3 and later) passes <c>.System</c> (all system messages joined by a blank line) and
/// <c>.Messages</c> (consecutive same-role messages merged) whenever the template mentions
/// <c>.Messages</c>, for /api/chat and /api/generate alike. A trailing user message gets the
/// assistant prefix (the generation prompt); a trailing assistant message is left open so the
/// model continues it. Without messages (Ollama before 0.3, or a caller that only sets
/// <c>.System</c>/<c>.Prompt</c>/<c>.Response</c>) a single-turn branch renders the same text for
/// one turn. Literal text sits between actions without trim markers (<c>{{-</c>) because those
/// would eat newlines that are part of the format.
/// </summary>
internal static class OllamaTemplateWriter
{
    public static string Write(TemplateLayout t)
    {
        var sb = new StringBuilder("{{ if .Messages }}");
        if (t.SystemPrefix is not null)
        {
            sb.Append("{{ if .System }}").Append(Literal(t.SystemPrefix)).Append("{{ .System }}").Append(Literal(t.SystemSuffix));
            if (t.DefaultSystem is not null)
                sb.Append("{{ else }}").Append(Literal(t.SystemPrefix + t.DefaultSystem + t.SystemSuffix));
            sb.Append("{{ end }}");
        }
        else
        {
            sb.Append(t.DefaultSystem is null ? "{{ $system := .System }}" : $"{{{{ $system := or .System {GoString(t.DefaultSystem)} }}}}");
        }

        sb.Append("{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}");
        sb.Append("{{ if eq .Role \"user\" }}").Append(Literal(t.UserPrefix));
        if (t.SystemPrefix is null)
            sb.Append("{{ if $system }}{{ $system }}").Append(Literal(t.SystemSeparator)).Append("{{ $system = \"\" }}{{ end }}");
        sb.Append("{{ .Content }}").Append(Literal(t.UserSuffix));
        if (t.AssistantPrefix.Length > 0) sb.Append("{{ if $last }}").Append(Literal(t.AssistantPrefix)).Append("{{ end }}");
        sb.Append("{{ else if eq .Role \"assistant\" }}").Append(Literal(t.AssistantPrefix)).Append("{{ .Content }}");
        sb.Append("{{ if not $last }}").Append(Literal(t.AssistantEnd + t.AssistantSuffix)).Append("{{ end }}");
        sb.Append("{{ end }}{{ end }}");
        sb.Append("{{ else }}");
        AppendSingleTurn(sb, t);
        sb.Append("{{ end }}");
        return sb.ToString();
    }

    private static void AppendSingleTurn(StringBuilder sb, TemplateLayout t)
    {
        if (t.SystemPrefix is not null)
        {
            sb.Append("{{ if .System }}").Append(Literal(t.SystemPrefix)).Append("{{ .System }}").Append(Literal(t.SystemSuffix));
            if (t.DefaultSystem is not null)
                sb.Append("{{ else }}").Append(Literal(t.SystemPrefix + t.DefaultSystem + t.SystemSuffix));
            sb.Append("{{ end }}");
        }
        sb.Append("{{ if .Prompt }}").Append(Literal(t.UserPrefix));
        if (t.SystemPrefix is null)
        {
            if (t.DefaultSystem is null) sb.Append("{{ if .System }}{{ .System }}").Append(Literal(t.SystemSeparator)).Append("{{ end }}");
            else sb.Append("{{ or .System ").Append(GoString(t.DefaultSystem)).Append(" }}").Append(Literal(t.SystemSeparator));
        }
        sb.Append("{{ .Prompt }}").Append(Literal(t.UserSuffix)).Append("{{ end }}");
        // Ollama cuts the last turn's template right after .Response, leaving the reply open.
        sb.Append(Literal(t.AssistantPrefix)).Append("{{ .Response }}");
        sb.Append("{{ if .Response }}").Append(Literal(t.AssistantEnd + t.AssistantSuffix)).Append("{{ end }}");
    }

    /// <summary>
    /// Template text as-is, unless it contains an action delimiter or ends with <c>{</c> (which would
    /// join the next action's <c>{{</c>); then as a quoted Go string action.
    /// </summary>
    internal static string Literal(string text) =>
        text.Contains("{{", StringComparison.Ordinal) || text.EndsWith('{') ? $"{{{{ {GoString(text)} }}}}" : text;

    /// <summary>A Go interpreted string literal.</summary>
    internal static string GoString(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '"': sb.Append("\\\""); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append($"\\x{(int)c:x2}");
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
