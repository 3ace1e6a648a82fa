using System.Text;
using System.Text.RegularExpressions;

namespace FineTune.Data.Jinja;

/// <summary>
/// The whitespace rules transformers compiles chat templates with (<c>trim_blocks</c> and
/// <c>lstrip_blocks</c> on), applied to the source text before lexing exactly as @huggingface/jinja
/// does, while remembering where each remaining character came from so errors name the real line.
/// <c>{% generation %}</c> and <c>{% endgeneration %}</c> tags become the marker characters
/// <see cref="GenerationStart"/>/<see cref="GenerationEnd"/>: they render nothing, and the output
/// positions they land on are the spans the template marks as the assistant's.
/// </summary>
internal static partial class Preprocessor
{
    /// <summary>Unicode noncharacters: never valid in interchanged text, so never in a dataset.</summary>
    public const char GenerationStart = '\uFDD0', GenerationEnd = '\uFDD1';

    // JavaScript's \s, which the reference implementation's regular expressions use.
    private const string JsSpace = @"[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]";

    [GeneratedRegex(@"(?:^|(?<=[\n\r\u2028\u2029]))[ \t]*(?=\{[#%-])")]
    private static partial Regex LstripBlocks();

    [GeneratedRegex(@"(?<=[#%-]\})\n")]
    private static partial Regex TrimBlocks();

    [GeneratedRegex(@"(" + JsSpace + @"*)\{%(-?)" + JsSpace + @"*(end)?generation" + JsSpace + @"*(-?)%\}(" + JsSpace + @"*)")]
    private static partial Regex GenerationTag();

    public static (string Text, int[] Map) Run(string source)
    {
        var text = source;
        var map = Enumerable.Range(0, source.Length).ToArray();
        // A single trailing newline is dropped, as Jinja's default keep_trailing_newline=False does.
        if (text.EndsWith('\n')) (text, map) = (text[..^1], map[..^1]);
        (text, map) = Rewrite(text, map, LstripBlocks(), _ => "");
        (text, map) = Rewrite(text, map, TrimBlocks(), _ => "");
        (text, map) = Rewrite(text, map, GenerationTag(), m =>
            (m.Groups[2].Value.Length > 0 ? "" : m.Groups[1].Value)
            + (m.Groups[3].Success ? GenerationEnd : GenerationStart)
            + (m.Groups[4].Value.Length > 0 ? "" : m.Groups[5].Value));
        return (text, map);
    }

    /// <summary>Replaces every match; replacement characters map to the match's start.</summary>
    private static (string, int[]) Rewrite(string text, int[] map, Regex regex, Func<Match, string> replacement)
    {
        var sb = new StringBuilder(text.Length);
        var newMap = new List<int>(map.Length);
        var last = 0;
        foreach (Match m in regex.Matches(text))
        {
            sb.Append(text, last, m.Index - last);
            newMap.AddRange(map.AsSpan(last, m.Index - last));
            var r = replacement(m);
            sb.Append(r);
            var at = m.Index < map.Length ? map[m.Index] : (map.Length > 0 ? map[^1] + 1 : 0);
            for (var i = 0; i < r.Length; i++) newMap.Add(at);
            last = m.Index + m.Length;
        }
        sb.Append(text, last, text.Length - last);
        newMap.AddRange(map.AsSpan(last));
        return (sb.ToString(), newMap.ToArray());
    }
}
