using System.Globalization;
using FineTune.Tokenizers.Text;

namespace FineTune.Tokenizers.PreTokenization;

/// <summary>One step of a tokenizer.json <c>pre_tokenizer</c>: refines the pieces of a section.</summary>
internal abstract class PreTokenizer
{
    public abstract void PreTokenize(PreTokenizeContext context);
}

internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> steps) : PreTokenizer
{
    public IReadOnlyList<PreTokenizer> Steps => steps;

    public override void PreTokenize(PreTokenizeContext context)
    {
        foreach (var step in steps) step.PreTokenize(context);
    }
}

/// <summary>Base for pre-tokenizers that only cut pieces into smaller pieces.</summary>
internal abstract class SplittingPreTokenizer : PreTokenizer
{
    [ThreadStatic] private static List<(int Start, int End)>? t_ranges;

    /// <summary>Appends the sub-ranges <paramref name="text"/> is cut into.</summary>
    protected abstract void Split(ReadOnlySpan<char> text, List<(int Start, int End)> ranges);

    public override void PreTokenize(PreTokenizeContext context)
    {
        var ranges = t_ranges ??= new List<(int, int)>();
        foreach (var piece in context.Pieces)
        {
            ranges.Clear();
            Split(context.View(piece), ranges);
            foreach (var (a, b) in ranges)
                if (b > a) context.Scratch.Add(PreTokenizeContext.SubPiece(piece, a, b));
        }
        context.SwapScratch();
    }
}

/// <summary><c>Split</c>: a literal or regex pattern with a delimiter behavior and optional inversion.</summary>
internal sealed class SplitPreTokenizer(IPatternMatcher matcher, SplitBehavior behavior, bool invert) : SplittingPreTokenizer
{
    [ThreadStatic] private static List<(int Start, int End)>? t_matches;

    protected override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> ranges)
    {
        var matches = t_matches ??= new List<(int, int)>();
        matches.Clear();
        matcher.FindAll(text, matches);
        if (!invert && behavior == SplitBehavior.Isolated)
        {
            // The common case (every Llama/Qwen tokenizer): matches and the gaps between them are pieces.
            var pos = 0;
            foreach (var (s, e) in matches)
            {
                if (s > pos) ranges.Add((pos, s));
                ranges.Add((s, e));
                pos = e;
            }
            if (pos < text.Length) ranges.Add((pos, text.Length));
            return;
        }
        SplitApplier.Apply(matches, text.Length, behavior, invert, ranges);
    }
}

/// <summary><c>Digits</c>: separates runs of (or, with individual_digits, single) numeric characters.</summary>
internal sealed class DigitsPreTokenizer(bool individualDigits) : SplittingPreTokenizer
{
    [ThreadStatic] private static List<(int Start, int End)>? t_matches;

    protected override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> ranges)
    {
        var matches = t_matches ??= new List<(int, int)>();
        matches.Clear();
        for (var i = 0; i < text.Length;)
        {
            var kind = CharClass.At(text, i, out var w);
            if (kind == CharKind.Number) matches.Add((i, i + w));
            i += w;
        }
        SplitApplier.Apply(matches, text.Length, individualDigits ? SplitBehavior.Isolated : SplitBehavior.Contiguous, false, ranges);
    }
}

/// <summary><c>Punctuation</c>: separates ASCII and Unicode punctuation characters.</summary>
internal sealed class PunctuationPreTokenizer(SplitBehavior behavior) : SplittingPreTokenizer
{
    [ThreadStatic] private static List<(int Start, int End)>? t_matches;

    protected override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> ranges)
    {
        var matches = t_matches ??= new List<(int, int)>();
        matches.Clear();
        for (var i = 0; i < text.Length;)
        {
            var w = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            if (IsPunctuation(text, i, w)) matches.Add((i, i + w));
            i += w;
        }
        SplitApplier.Apply(matches, text.Length, behavior, false, ranges);
    }

    private static bool IsPunctuation(ReadOnlySpan<char> text, int i, int w)
    {
        var c = text[i];
        if (c < 128) return char.IsAsciiLetterOrDigit(c) is false && c > ' ' && c < 127;
        var category = w == 2 ? System.Text.Rune.GetUnicodeCategory(new System.Text.Rune(c, text[i + 1])) : CharUnicodeInfo.GetUnicodeCategory(c);
        return category is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }
}

/// <summary><c>Whitespace</c>: keeps runs of word characters and runs of other non-space characters.</summary>
internal sealed class WhitespacePreTokenizer : SplittingPreTokenizer
{
    protected override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> ranges)
    {
        var i = 0;
        while (i < text.Length)
        {
            if (CharClass.IsWhiteSpace(text[i])) { i++; continue; }
            var word = IsWord(text, i);
            var j = i;
            while (j < text.Length && !CharClass.IsWhiteSpace(text[j]) && IsWord(text, j) == word)
                j += char.IsHighSurrogate(text[j]) && j + 1 < text.Length ? 2 : 1;
            ranges.Add((i, j));
            i = j;
        }
    }

    private static bool IsWord(ReadOnlySpan<char> text, int i)
    {
        if (text[i] == '_') return true;
        var kind = CharClass.At(text, i, out _);
        return kind is CharKind.Letter or CharKind.Number;
    }
}

/// <summary><c>WhitespaceSplit</c>: splits on whitespace, dropping it.</summary>
internal sealed class WhitespaceSplitPreTokenizer : SplittingPreTokenizer
{
    protected override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> ranges)
    {
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && CharClass.IsWhiteSpace(text[i])) i++;
            var j = i;
            while (j < text.Length && !CharClass.IsWhiteSpace(text[j])) j++;
            if (j > i) ranges.Add((i, j));
            i = j;
        }
    }
}

/// <summary>
/// <c>ByteLevel</c>: optional prefix space, optional GPT-2 split. The byte-to-character mapping
/// itself is done by the model on UTF-8 bytes, which gives the same ids without building strings.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    private readonly SplitPreTokenizer _split = new(new Gpt2StyleMatcher(), SplitBehavior.Isolated, false);

    public override void PreTokenize(PreTokenizeContext context)
    {
        if (addPrefixSpace)
        {
            for (var i = 0; i < context.Pieces.Count; i++)
            {
                var p = context.Pieces[i];
                var startsWithSpace = p.Prefix is { Length: > 0 } ? p.Prefix[0] == ' ' : p.End > p.Start && context.Text[p.Start] == ' ';
                if (!startsWithSpace) context.Pieces[i] = p with { Prefix = " " + p.Prefix };
            }
        }
        if (useRegex) _split.PreTokenize(context);
    }
}

/// <summary><c>Metaspace</c>: spaces become the replacement character, optionally prepended, then split before each.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    private readonly SplitPreTokenizer _split = new(new LiteralMatcher(replacement.ToString()), SplitBehavior.MergedWithNext, false);

    public override void PreTokenize(PreTokenizeContext context)
    {
        if (context.Text.Contains(' ')) context.Text = context.Text.Replace(' ', replacement);
        if (scheme != PrependScheme.Never)
        {
            for (var i = 0; i < context.Pieces.Count; i++)
            {
                var p = context.Pieces[i];
                var first = p.Prefix is { Length: > 0 } ? p.Prefix[0] : (p.End > p.Start ? context.Text[p.Start] : '\0');
                if (first == replacement) continue;
                if (scheme == PrependScheme.First && !(context.IsFirstSection && p.Start == 0 && p.Prefix is null)) continue;
                context.Pieces[i] = p with { Prefix = replacement + p.Prefix };
            }
        }
        if (split) _split.PreTokenize(context);
    }
}

internal enum PrependScheme
{
    Always,
    First,
    Never,
}
