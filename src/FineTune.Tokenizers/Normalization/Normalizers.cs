using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using FineTune.Tokenizers.Text;

namespace FineTune.Tokenizers.Normalization;

/// <summary>One step of a tokenizer.json <c>normalizer</c>.</summary>
internal abstract class Normalizer
{
    public abstract NormalizedText Normalize(NormalizedText input);

    /// <summary>Normalizes a bare string (used for added-token contents).</summary>
    public string Normalize(string text) => Normalize(NormalizedText.Identity(text)).Text;
}

internal sealed class SequenceNormalizer(IReadOnlyList<Normalizer> steps) : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        foreach (var step in steps) input = step.Normalize(input);
        return input;
    }
}

/// <summary>NFC, NFD, NFKC, NFKD. Normalizes segment by segment so every output unit keeps its input range.</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        if (text.IsNormalized(form)) return input;
        var b = new AlignedBuilder(input);
        var i = 0;
        while (i < text.Length)
        {
            // A segment is a starter followed by everything that can combine with it; composition and
            // reordering never cross a segment boundary, so normalizing segments separately is exact.
            var end = i + UnitLength(text, i);
            while (end < text.Length && Continues(text, end)) end += UnitLength(text, end);
            var segment = text.AsSpan(i, end - i);
            if (segment.IsNormalized(form)) b.Copy(i, end);
            else b.Append(segment.ToString().Normalize(form), i, end);
            i = end;
        }
        return b.Build();
    }

    private static int UnitLength(string text, int i) =>
        char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;

    private static bool Continues(string text, int i)
    {
        var c = text[i];
        // Hangul medial vowels and final consonants compose with the preceding syllable.
        if (c is >= '\u1160' and <= '\u11FF') return true;
        var category = UnitLength(text, i) == 2
            ? Rune.GetUnicodeCategory(new Rune(c, text[i + 1]))
            : CharUnicodeInfo.GetUnicodeCategory(c);
        return category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
    }
}

internal sealed class LowercaseNormalizer : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        var b = new AlignedBuilder(input);
        Span<char> buffer = stackalloc char[2];
        for (var i = 0; i < text.Length;)
        {
            var status = Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out var used);
            if (status != System.Buffers.OperationStatus.Done) { b.Copy(i, i + 1); i++; continue; }
            if (rune.Value == 0x130)
            {
                // Unicode's full lowercase of 'İ' is "i̇" (two code points), as Rust's to_lowercase gives.
                b.Append("i\u0307", i, i + used);
            }
            else
            {
                var lower = Rune.ToLowerInvariant(rune);
                var n = lower.EncodeToUtf16(buffer);
                b.Append(buffer[..n], i, i + used);
            }
            i += used;
        }
        return b.Build();
    }
}

internal sealed class StripAccentsNormalizer : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        var b = new AlignedBuilder(input);
        for (var i = 0; i < text.Length; i++)
            if (CharUnicodeInfo.GetUnicodeCategory(text[i]) != UnicodeCategory.NonSpacingMark) b.Copy(i, i + 1);
        return b.Build();
    }
}

internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        if (input.Text.Length == 0) return input;
        if (input.Starts is null)
        {
            // Unchanged input (Llama 2's first step): the alignment is the prefix at 0, then unit i from i.
            var n = input.Text.Length;
            var p = prefix.Length;
            var starts = new int[n + p];
            var ends = new int[n + p];
            for (var i = 0; i < n; i++)
            {
                starts[p + i] = i;
                ends[p + i] = i + 1;
            }
            return new NormalizedText(string.Concat(prefix, input.Text), starts, ends, input.InputLength);
        }
        var b = new AlignedBuilder(input);
        b.Append(prefix, 0, 0);
        b.Copy(0, input.Text.Length);
        return b.Build();
    }
}

internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        int start = 0, end = text.Length;
        if (left) while (start < end && CharClass.IsWhiteSpace(text[start])) start++;
        if (right) while (end > start && CharClass.IsWhiteSpace(text[end - 1])) end--;
        if (start == 0 && end == text.Length) return input;
        var b = new AlignedBuilder(input);
        b.Copy(start, end);
        return b.Build();
    }
}

/// <summary>Replaces a literal string or a regex match with <c>content</c>.</summary>
internal sealed class ReplaceNormalizer(string? literal, Regex? regex, string content) : Normalizer
{
    public override NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        if (literal is not null && literal.Length == content.Length && literal.Length == 1)
        {
            // One unit for one unit: the alignment is unchanged.
            if (text.IndexOf(literal[0]) < 0) return input;
            return new NormalizedText(text.Replace(literal[0], content[0]), input.Starts, input.Ends, input.InputLength);
        }
        var b = new AlignedBuilder(input);
        var pos = 0;
        foreach (var (start, length) in Matches(text))
        {
            if (start > pos) b.Copy(pos, start);
            b.Append(content, start, start + length);
            pos = start + length;
        }
        if (pos == 0) return input;
        b.Copy(pos, text.Length);
        return b.Build();
    }

    private IEnumerable<(int Start, int Length)> Matches(string text)
    {
        if (literal is not null)
        {
            if (literal.Length == 0) yield break;
            for (var i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
                yield return (i, literal.Length);
        }
        else
        {
            foreach (Match m in regex!.Matches(text))
                if (m.Length > 0) yield return (m.Index, m.Length);
        }
    }
}
