using System.Globalization;
using System.Text;

namespace FineTune.Data.Jinja;

/// <summary>Options of the <c>tojson</c> filter.</summary>
internal sealed record JsonOptions(int? Indent = null, bool EnsureAscii = false, (string Item, string Key)? Separators = null, bool SortKeys = false);

/// <summary>
/// JSON as the <c>tojson</c> filter writes it (Python's <c>json.dumps</c> layout: <c>", "</c> and
/// <c>": "</c> separators, <c>","</c> between items when indenting; strings escaped as JavaScript's
/// <c>JSON.stringify</c> does, the reference renderer's behaviour).
/// </summary>
internal static class JinjaJson
{
    public static string Serialize(JinjaValue value, JsonOptions options, bool undefinedAsNull = true, int depth = 0)
    {
        var sb = new StringBuilder();
        Write(sb, value, options, undefinedAsNull, depth);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JinjaValue value, JsonOptions o, bool undefinedAsNull, int depth)
    {
        if (depth > 100) throw new JinjaRuntimeException(JinjaErrors.Limit, "tojson: value nested more than 100 levels deep");
        var (itemSep, keySep) = o.Separators ?? (o.Indent is > 0 ? (",", ": ") : (", ", ": "));
        switch (value)
        {
            case JinjaNone: sb.Append("null"); return;
            case JinjaUndefined: sb.Append(undefinedAsNull ? "null" : "undefined"); return;
            case JinjaBool b: sb.Append(b.Value ? "true" : "false"); return;
            case JinjaInt i: sb.Append(i.Value.ToString(CultureInfo.InvariantCulture)); return;
            case JinjaFloat f: sb.Append(double.IsFinite(f.Value) ? JsNumber.Format(f.Value) : "null"); return;
            case JinjaString s: Quote(sb, s.Value, o.EnsureAscii); return;
            case JinjaArray a:
            {
                var indent = o.Indent is > 0 ? new string(' ', o.Indent.Value) : "";
                var basePad = "\n" + string.Concat(Enumerable.Repeat(indent, depth));
                var childPad = basePad + indent;
                if (o.Indent is > 0 && a.Items.Count > 0)
                {
                    sb.Append('[').Append(childPad);
                    for (var k = 0; k < a.Items.Count; k++)
                    {
                        if (k > 0) sb.Append(itemSep).Append(childPad);
                        Write(sb, a.Items[k], o, undefinedAsNull, depth + 1);
                    }
                    sb.Append(basePad).Append(']');
                }
                else
                {
                    sb.Append('[');
                    for (var k = 0; k < a.Items.Count; k++)
                    {
                        if (k > 0) sb.Append(itemSep);
                        Write(sb, a.Items[k], o, undefinedAsNull, depth + 1);
                    }
                    sb.Append(']');
                }
                return;
            }
            case JinjaObject or JinjaNamespace:
            {
                var entries = (value is JinjaObject obj ? obj.Entries : ((JinjaNamespace)value).Entries).ToList();
                if (o.SortKeys) entries.Sort((x, y) => string.Compare(x.Key, y.Key, StringComparison.InvariantCulture));
                var indent = o.Indent is > 0 ? new string(' ', o.Indent.Value) : "";
                var basePad = "\n" + string.Concat(Enumerable.Repeat(indent, depth));
                var childPad = basePad + indent;
                sb.Append('{');
                for (var k = 0; k < entries.Count; k++)
                {
                    if (k > 0) sb.Append(itemSep);
                    if (o.Indent is > 0) sb.Append(childPad);
                    Quote(sb, entries[k].Key, o.EnsureAscii);
                    sb.Append(keySep);
                    Write(sb, entries[k].Value, o, undefinedAsNull, depth + 1);
                }
                if (o.Indent is > 0 && entries.Count > 0) sb.Append(basePad);
                sb.Append('}');
                return;
            }
            default:
                throw new JinjaRuntimeException(JinjaErrors.Render, $"Cannot convert a {value.TypeName} to JSON");
        }
    }

    /// <summary>A JSON string literal as <c>JSON.stringify</c> writes it; with <paramref name="ensureAscii"/> every char from U+007F up as <c>\uXXXX</c>.</summary>
    public static void Quote(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    var lone = char.IsHighSurrogate(c) ? !(i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                        : char.IsLowSurrogate(c) && !(i > 0 && char.IsHighSurrogate(s[i - 1]));
                    if (c < 0x20 || lone || (ensureAscii && c >= 0x7f)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
