using System.Text.RegularExpressions;
using FineTune.Tokenizers.Text;

namespace FineTune.Tokenizers.PreTokenization;

/// <summary>Finds the delimiter (pattern) ranges of a Split pre-tokenizer.</summary>
internal interface IPatternMatcher
{
    /// <summary>Appends every non-empty match in <paramref name="text"/>, left to right.</summary>
    void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches);
}

internal sealed class LiteralMatcher(string literal) : IPatternMatcher
{
    public void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches)
    {
        if (literal.Length == 0) return;
        var pos = 0;
        while (pos <= text.Length - literal.Length)
        {
            var i = text[pos..].IndexOf(literal.AsSpan(), StringComparison.Ordinal);
            if (i < 0) break;
            matches.Add((pos + i, pos + i + literal.Length));
            pos += i + literal.Length;
        }
    }
}

/// <summary>
/// A .NET regex; used for patterns without a hand-written scanner. .NET matches UTF-16 units, so a
/// <c>\p{L}</c> or <c>\p{N}</c> in such a pattern does not match letters and digits outside the
/// BMP (e.g. CJK Extension B) the way Oniguruma does; the Llama 3, Qwen and GPT-2 patterns use the
/// scanners below and are exact.
/// </summary>
internal sealed class RegexMatcher(Regex regex) : IPatternMatcher
{
    public void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches)
    {
        foreach (var m in regex.EnumerateMatches(text))
            if (m.Length > 0) matches.Add((m.Index, m.Index + m.Length));
    }
}

/// <summary>
/// Hand-written scanner equivalent to the Llama-3 / Qwen2+ split regex
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,K}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>
/// (K = 3 for Llama 3, 1 for Qwen). It classifies whole code points, as Oniguruma does, where a
/// .NET regex would see the two halves of a surrogate pair as non-letters; and it is several
/// times faster than a backtracking regex.
/// </summary>
internal sealed class Gpt4StyleMatcher(int maxDigits) : IPatternMatcher
{
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string QwenPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches)
    {
        var i = 0;
        while (i < text.Length)
        {
            var end = MatchAt(text, i);
            matches.Add((i, end));
            i = end;
        }
    }

    private int MatchAt(ReadOnlySpan<char> s, int i)
    {
        var n = s.Length;
        if (s[i] == '\'')
        {
            var len = Contraction(s, i + 1, ignoreCase: true);
            if (len > 0) return i + 1 + len;
        }
        var kind = CharClass.At(s, i, out var width);
        if (kind == CharKind.Letter) return Run(s, i, CharKind.Letter);
        if (kind is CharKind.Other or CharKind.Space && i + width < n && CharClass.At(s, i + width, out _) == CharKind.Letter)
            return Run(s, i + width, CharKind.Letter);
        if (kind == CharKind.Number)
        {
            var j = i;
            for (var count = 0; count < maxDigits && j < n; count++)
            {
                if (CharClass.At(s, j, out var w) != CharKind.Number) break;
                j += w;
            }
            return j;
        }
        if (s[i] == ' ' && i + 1 < n && CharClass.At(s, i + 1, out _) == CharKind.Other)
            return NewLines(s, Run(s, i + 1, CharKind.Other));
        if (kind == CharKind.Other) return NewLines(s, Run(s, i, CharKind.Other));
        return Whitespace(s, i);
    }

    /// <summary>Length of a contraction suffix (s, t, re, ve, m, ll, d) at <paramref name="i"/>, or 0.</summary>
    internal static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        if (i >= s.Length) return 0;
        var first = Fold(s[i], ignoreCase);
        var second = i + 1 < s.Length ? Fold(s[i + 1], ignoreCase) : '\0';
        return first switch
        {
            's' or 't' or 'm' or 'd' => 1,
            'r' or 'v' => second == 'e' ? 2 : 0,
            'l' => second == 'l' ? 2 : 0,
            _ => 0,
        };
    }

    private static char Fold(char c, bool ignoreCase) => ignoreCase && c is >= 'A' and <= 'Z' ? (char)(c | 0x20) : c;

    internal static int Run(ReadOnlySpan<char> s, int i, CharKind kind)
    {
        while (i < s.Length)
        {
            if (CharClass.At(s, i, out var w) != kind) break;
            i += w;
        }
        return i;
    }

    private static int NewLines(ReadOnlySpan<char> s, int i)
    {
        while (i < s.Length && s[i] is '\r' or '\n') i++;
        return i;
    }

    /// <summary><c>\s*[\r\n]+|\s+(?!\S)|\s+</c> at a whitespace position.</summary>
    private static int Whitespace(ReadOnlySpan<char> s, int i)
    {
        var j = i;
        var lastNewLine = -1;
        while (j < s.Length)
        {
            var c = s[j];
            if (c is '\r' or '\n') lastNewLine = j;
            else if (!CharClass.IsWhiteSpace(c)) break;
            j++;
        }
        if (lastNewLine >= 0) return lastNewLine + 1;
        if (j == s.Length || j - 1 == i) return j;
        return j - 1;
    }
}

/// <summary>
/// Hand-written scanner equivalent to GPT-2's split regex (the ByteLevel pre-tokenizer's <c>use_regex</c>):
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.
/// </summary>
internal sealed class Gpt2StyleMatcher : IPatternMatcher
{
    public const string Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches)
    {
        var i = 0;
        while (i < text.Length)
        {
            var end = MatchAt(text, i);
            matches.Add((i, end));
            i = end;
        }
    }

    private static int MatchAt(ReadOnlySpan<char> s, int i)
    {
        if (s[i] == '\'')
        {
            var len = Gpt4StyleMatcher.Contraction(s, i + 1, ignoreCase: false);
            if (len > 0) return i + 1 + len;
        }
        var start = i;
        if (s[i] == ' ' && i + 1 < s.Length)
        {
            var next = CharClass.At(s, i + 1, out _);
            if (next is CharKind.Letter or CharKind.Number or CharKind.Other) start = i + 1;
        }
        var kind = CharClass.At(s, start, out _);
        if (kind is CharKind.Letter or CharKind.Number or CharKind.Other) return Gpt4StyleMatcher.Run(s, start, kind);
        var j = i;
        while (j < s.Length && CharClass.IsWhiteSpace(s[j])) j++;
        if (j == s.Length || j - 1 == i) return j;
        return j - 1;
    }
}
