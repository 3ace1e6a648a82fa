using System.Buffers;
using FineTune.Tokenizers.Text;

namespace FineTune.Tokenizers.AddedTokens;

/// <summary>A recognised added token: input range [Start, End) (including stripped whitespace) and its id.</summary>
internal readonly record struct AddedTokenMatch(int Start, int End, int Id);

/// <summary>
/// Finds added tokens leftmost-longest, as Hugging Face's AddedVocabulary does, honouring
/// <c>single_word</c>, <c>lstrip</c> and <c>rstrip</c>; or longest token first, as llama.cpp
/// partitions text on a GGUF's special and user-defined tokens.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly SearchValues<char> _firstChars;
    private readonly Dictionary<char, (string Text, AddedToken Token)[]> _byFirstChar;
    private readonly (string Text, AddedToken Token)[]? _longestFirst;

    /// <param name="tokens">The tokens with the text to match (raw content, or normalized content).</param>
    /// <param name="longestFirst">
    /// Match as llama.cpp does: every occurrence of the longest token first, then of the next longest
    /// in what is left, and so on (no whitespace stripping). It differs from leftmost-longest only where
    /// tokens overlap in the text.
    /// </param>
    public AddedTokenMatcher(IEnumerable<(string Text, AddedToken Token)> tokens, bool longestFirst = false)
    {
        var list = tokens.Where(t => t.Text.Length > 0).ToList();
        _byFirstChar = list
            .GroupBy(t => t.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Text.Length).ToArray());
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
        IsEmpty = _byFirstChar.Count == 0;
        if (longestFirst) _longestFirst = [.. list.OrderByDescending(t => t.Text.Length).ThenBy(t => t.Token.Id)];
    }

    public bool IsEmpty { get; }

    private void FindLongestFirst(string text, int from, int to, List<AddedTokenMatch> matches)
    {
        var free = new List<(int Start, int End)> { (from, to) };
        var found = new List<AddedTokenMatch>();
        foreach (var (content, token) in _longestFirst!)
        {
            for (var f = 0; f < free.Count; f++)
            {
                var (start, end) = free[f];
                var i = text.AsSpan(start, end - start).IndexOf(content, StringComparison.Ordinal);
                if (i < 0) continue;
                i += start;
                found.Add(new AddedTokenMatch(i, i + content.Length, token.Id));
                // What is left of this stretch: the part before the match, and after it (searched next).
                free[f] = (start, i);
                free.Insert(f + 1, (i + content.Length, end));
            }
        }
        found.Sort((a, b) => a.Start.CompareTo(b.Start));
        matches.AddRange(found);
    }

    /// <summary>
    /// Appends the matches lying entirely inside [<paramref name="from"/>, <paramref name="to"/>) of
    /// <paramref name="text"/>; whitespace stripping may extend them down to <paramref name="floor"/>
    /// (end of the previous match) and up to the end of the text.
    /// </summary>
    public void FindAll(string text, int from, int to, int floor, List<AddedTokenMatch> matches)
    {
        if (_longestFirst is not null)
        {
            FindLongestFirst(text, from, to, matches);
            return;
        }
        var pos = from;
        var lastEnd = floor;
        while (pos < to)
        {
            var k = text.AsSpan(pos, to - pos).IndexOfAny(_firstChars);
            if (k < 0) return;
            var i = pos + k;
            var found = false;
            foreach (var (content, token) in _byFirstChar[text[i]])
            {
                if (content.Length > to - i || !text.AsSpan(i).StartsWith(content, StringComparison.Ordinal)) continue;
                var end = i + content.Length;
                if (token.SingleWord && (EndsWithWord(text, i) || StartsWithWord(text, end))) continue;
                var start = i;
                if (token.LStrip)
                    while (start > lastEnd && CharClass.IsWhiteSpace(text[start - 1])) start--;
                if (token.RStrip)
                    while (end < text.Length && CharClass.IsWhiteSpace(text[end])) end++;
                matches.Add(new AddedTokenMatch(start, end, token.Id));
                lastEnd = end;
                pos = Math.Max(end, i + 1);
                found = true;
                break;
            }
            if (!found) pos = i + 1;
        }
    }

    private static bool IsWordChar(string text, int i)
    {
        var c = text[i];
        if (c == '_') return true;
        if (char.IsLowSurrogate(c) && i > 0) i--;
        var kind = CharClass.At(text, i, out _);
        return kind is CharKind.Letter or CharKind.Number;
    }

    private static bool EndsWithWord(string text, int i) => i > 0 && IsWordChar(text, i - 1);

    private static bool StartsWithWord(string text, int i) => i < text.Length && IsWordChar(text, i);
}
