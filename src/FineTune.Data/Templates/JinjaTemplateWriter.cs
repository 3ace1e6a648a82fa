using System.Text;

namespace FineTune.Data.Templates;

/// <summary>
/// Generates a Hugging Face style Jinja <c>chat_template</c> (for the GGUF's
/// <c>tokenizer.chat_template</c>) from a <see cref="TemplateLayout"/>. All literal text is emitted
/// as quoted expressions so whitespace control (<c>{%-</c>) only removes the formatting newlines
/// between tags, never template text. Like the models' own templates it renders
/// <c>bos_token</c> first when the format starts with BOS, closes every assistant turn, and adds
/// the assistant prefix when <c>add_generation_prompt</c> is set.
/// </summary>
internal static class JinjaTemplateWriter
{
    public static string Write(TemplateLayout t)
    {
        var sb = new StringBuilder();
        if (t.BosText is not null) sb.Append("{{- bos_token }}\n");
        sb.Append("{%- set ns = namespace(system='') %}\n");
        sb.Append("{%- for message in messages %}{%- if message['role'] == 'system' %}");
        sb.Append("{%- if ns.system %}{%- set ns.system = ns.system + ").Append(Str(TrainingTextRenderer.MergeSeparator)).Append(" %}{%- endif %}");
        sb.Append("{%- set ns.system = ns.system + message['content'] %}{%- endif %}{%- endfor %}\n");
        if (t.DefaultSystem is not null)
            sb.Append("{%- if not ns.system %}{%- set ns.system = ").Append(Str(t.DefaultSystem)).Append(" %}{%- endif %}\n");
        if (t.SystemPrefix is not null)
            sb.Append("{%- if ns.system %}{{- ").Append(Str(t.SystemPrefix)).Append(" + ns.system + ").Append(Str(t.SystemSuffix)).Append(" }}{%- endif %}\n");
        sb.Append("{%- for message in messages %}\n");
        sb.Append("{%- if message['role'] == 'user' %}{{- ").Append(Str(t.UserPrefix)).Append(" }}");
        if (t.SystemPrefix is null)
            sb.Append("{%- if ns.system %}{{- ns.system + ").Append(Str(t.SystemSeparator)).Append(" }}{%- set ns.system = '' %}{%- endif %}");
        sb.Append("{{- message['content'] + ").Append(Str(t.UserSuffix)).Append(" }}\n");
        sb.Append("{%- elif message['role'] == 'assistant' %}{{- ").Append(Str(t.AssistantPrefix)).Append(" + message['content'] + ")
          .Append(Str(t.AssistantEnd + t.AssistantSuffix)).Append(" }}\n");
        sb.Append("{%- endif %}\n{%- endfor %}\n");
        sb.Append("{%- if add_generation_prompt %}{{- ").Append(Str(t.AssistantPrefix)).Append(" }}{%- endif %}");
        // No newline after the last tag: it would be template text and end up in every prompt.
        return sb.ToString();
    }

    /// <summary>A single-quoted Jinja string literal.</summary>
    private static string Str(string text)
    {
        var sb = new StringBuilder("'");
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\'': sb.Append("\\'"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('\'').ToString();
    }
}
