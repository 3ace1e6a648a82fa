using System.Text;
using System.Text.RegularExpressions;

namespace FineTune.Data.Jinja;

/// <summary>Methods of strings (<c>strip</c>, <c>split</c>, <c>startswith</c>, ...) and of mappings (<c>items</c>, <c>get</c>, ...).</summary>
internal static partial class Methods
{
    [GeneratedRegex(@"\b\w", RegexOptions.ECMAScript)]
    private static partial Regex WordStart();

    public static string JsTrim(string s) => JsTrimEnd(JsTrimStart(s));
    public static string JsTrimStart(string s) { var i = 0; while (i < s.Length && Lexer.IsJsSpace(s[i])) i++; return s[i..]; }
    public static string JsTrimEnd(string s) { var i = s.Length; while (i > 0 && Lexer.IsJsSpace(s[i - 1])) i--; return s[..i]; }
    public static string Title(string s) => WordStart().Replace(s, m => m.Value.ToUpperInvariant());
    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private static JinjaFunction Fn(string name, Func<List<JinjaValue>, JinjaValue> f) => new(name, (args, _) => f(args));

    public static JinjaValue? ForString(Interpreter interpreter, JinjaString str, string name)
    {
        var s = str.Value;
        return name switch
        {
            "upper" => Fn(name, _ => new JinjaString(s.ToUpperInvariant())),
            "lower" => Fn(name, _ => new JinjaString(s.ToLowerInvariant())),
            // The reference ignores strip's argument and strips whitespace, so '\n'-stripping templates render the same here.
            "strip" => Fn(name, _ => new JinjaString(JsTrim(s))),
            "lstrip" => Fn(name, _ => new JinjaString(JsTrimStart(s))),
            "rstrip" => Fn(name, _ => new JinjaString(JsTrimEnd(s))),
            "title" => Fn(name, _ => new JinjaString(Title(s))),
            "capitalize" => Fn(name, _ => new JinjaString(Capitalize(s))),
            "length" => new JinjaInt(s.Length),
            "startswith" => Fn(name, args => JinjaBool.Of(Affix(name, args, p => s.StartsWith(p, StringComparison.Ordinal)))),
            "endswith" => Fn(name, args => JinjaBool.Of(Affix(name, args, p => s.EndsWith(p, StringComparison.Ordinal)))),
            "split" => Fn(name, args => interpreter.Sized(Split(s, args))),
            "replace" => Fn(name, args => interpreter.Sized(Replace(s, args))),
            _ => null,
        };
    }

    private static bool Affix(string name, List<JinjaValue> args, Func<string, bool> test) => args.FirstOrDefault() switch
    {
        JinjaString p => test(p.Value),
        JinjaArray a => a.Items.Any(i => i is JinjaString p ? test(p.Value) : throw Interpreter.Error($"{name}() tuple elements must be strings")),
        null => throw Interpreter.Error($"{name}() requires at least one argument"),
        _ => throw Interpreter.Error($"{name}() argument must be a string or tuple of strings"),
    };

    private static JinjaArray Split(string s, List<JinjaValue> args)
    {
        var positional = args.Where(a => a is not JinjaKeywordArguments).ToList();
        var sep = positional.ElementAtOrDefault(0) ?? JinjaNone.Instance;
        var maxValue = positional.ElementAtOrDefault(1) ?? new JinjaInt(-1);
        if (maxValue is not JinjaInt max) throw Interpreter.Error("split(): maxsplit must be a number");
        var result = new List<string>();
        if (sep is JinjaNone)
        {
            var text = JsTrimStart(s);
            var i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && Lexer.IsJsSpace(text[i])) i++;
                if (i >= text.Length) break;
                var start = i;
                while (i < text.Length && !Lexer.IsJsSpace(text[i])) i++;
                if (max.Value != -1 && result.Count >= max.Value) { result.Add(text[start..]); break; }
                result.Add(text[start..i]);
            }
        }
        else if (sep is JinjaString sepString)
        {
            if (sepString.Value.Length == 0) throw Interpreter.Error("split(): empty separator");
            result = [.. s.Split(sepString.Value)];
            if (max.Value != -1 && result.Count > max.Value)
            {
                var rest = string.Join(sepString.Value, result.Skip((int)max.Value));
                result = [.. result.Take((int)max.Value), rest];
            }
        }
        else throw Interpreter.Error("split(): separator must be a string or none");
        return new JinjaArray(result.Select(x => (JinjaValue)new JinjaString(x)).ToList());
    }

    internal static JinjaString Replace(string s, List<JinjaValue> args)
    {
        if (args.Count < 2) throw Interpreter.Error("replace() requires at least two arguments");
        if (args[0] is not JinjaString oldValue || args[1] is not JinjaString newValue) throw Interpreter.Error("replace() arguments must be strings");
        JinjaValue count = args.Count > 2
            ? (args[2] is JinjaKeywordArguments kw ? kw.Get("count") ?? JinjaNone.Instance : args[2])
            : JinjaNone.Instance;
        long remaining = count switch
        {
            JinjaNone => long.MaxValue,
            JinjaInt i => i.Value < 0 ? long.MaxValue : i.Value,
            _ => throw Interpreter.Error("replace() count must be a number or none"),
        };
        if (remaining == 0) return new JinjaString(s);
        var sb = new StringBuilder();
        if (oldValue.Value.Length == 0)
        {
            // An empty pattern matches before every code point and at the end.
            var points = Slicing.CodePoints(s);
            foreach (var p in points)
            {
                if (remaining > 0) { sb.Append(newValue.Value); remaining--; }
                sb.Append(p);
            }
            if (remaining > 0) sb.Append(newValue.Value);
            return new JinjaString(sb.ToString());
        }
        var pos = 0;
        while (remaining > 0)
        {
            var next = s.IndexOf(oldValue.Value, pos, StringComparison.Ordinal);
            if (next < 0) break;
            sb.Append(s, pos, next - pos).Append(newValue.Value);
            pos = next + oldValue.Value.Length;
            remaining--;
        }
        sb.Append(s, pos, s.Length - pos);
        return new JinjaString(sb.ToString());
    }

    public static JinjaValue? ForObject(Interpreter interpreter, JinjaObject o, string name) => name switch
    {
        "get" => Fn(name, args => args.ElementAtOrDefault(0) is JinjaString key
            ? o.Get(key.Value) ?? args.ElementAtOrDefault(1) ?? JinjaNone.Instance
            : throw Interpreter.Error("get(): the key must be a string")),
        "items" => Fn(name, _ => Items(o)),
        "keys" => Fn(name, _ => new JinjaArray(o.Entries.Keys.Select(k => (JinjaValue)new JinjaString(k)).ToList())),
        "values" => Fn(name, _ => new JinjaArray([.. o.Entries.Values])),
        _ => null,
    };

    public static JinjaArray Items(JinjaObject o) =>
        new(o.Entries.Select(kv => (JinjaValue)new JinjaArray([new JinjaString(kv.Key), kv.Value])).ToList());
}
