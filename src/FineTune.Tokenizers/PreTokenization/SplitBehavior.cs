namespace FineTune.Tokenizers.PreTokenization;

/// <summary>What happens to the delimiters a splitting pre-tokenizer finds (tokenizers' <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// <summary>Turns "delimiter" ranges into pieces following a <see cref="SplitBehavior"/>.</summary>
internal static class SplitApplier
{
    /// <summary>
    /// <paramref name="matches"/> are the delimiter ranges (sorted, non-empty, non-overlapping) within a
    /// view of length <paramref name="length"/>; appends the resulting sub-ranges to <paramref name="output"/>.
    /// </summary>
    public static void Apply(List<(int Start, int End)> matches, int length, SplitBehavior behavior, bool invert, List<(int Start, int End)> output)
    {
        // The whole view as alternating (range, isDelimiter) parts, like tokenizers' find_matches.
        var parts = new List<(int Start, int End, bool Delim)>(matches.Count * 2 + 1);
        var pos = 0;
        foreach (var (s, e) in matches)
        {
            if (s > pos) parts.Add((pos, s, invert));
            parts.Add((s, e, !invert));
            pos = e;
        }
        if (pos < length) parts.Add((pos, length, invert));

        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var p in parts) if (!p.Delim) output.Add((p.Start, p.End));
                break;
            case SplitBehavior.Isolated:
                foreach (var p in parts) output.Add((p.Start, p.End));
                break;
            case SplitBehavior.Contiguous:
            {
                var previousDelim = false;
                foreach (var p in parts)
                {
                    if (p.Delim && previousDelim && output.Count > 0) output[^1] = (output[^1].Start, p.End);
                    else output.Add((p.Start, p.End));
                    previousDelim = p.Delim;
                }
                break;
            }
            case SplitBehavior.MergedWithPrevious:
            {
                var previousDelim = false;
                var first = output.Count;
                foreach (var p in parts)
                {
                    if (p.Delim && !previousDelim && output.Count > first) output[^1] = (output[^1].Start, p.End);
                    else output.Add((p.Start, p.End));
                    previousDelim = p.Delim;
                }
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                var reversed = new List<(int Start, int End)>(parts.Count);
                var nextDelim = false;
                for (var i = parts.Count - 1; i >= 0; i--)
                {
                    var p = parts[i];
                    if (p.Delim && !nextDelim && reversed.Count > 0) reversed[^1] = (p.Start, reversed[^1].End);
                    else reversed.Add((p.Start, p.End));
                    nextDelim = p.Delim;
                }
                for (var i = reversed.Count - 1; i >= 0; i--) output.Add(reversed[i]);
                break;
            }
        }
    }
}
