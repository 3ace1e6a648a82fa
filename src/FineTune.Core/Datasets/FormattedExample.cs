namespace FineTune.Core.Datasets;

/// <summary>A half-open character range <c>[Start, End)</c> into a formatted example's text.</summary>
public readonly record struct TextSpan(int Start, int End)
{
    /// <summary>Number of characters covered.</summary>
    public int Length => End - Start;

    /// <summary>True when the two ranges share at least one character.</summary>
    public bool Overlaps(int start, int end) => start < End && Start < end;
}

/// <summary>
/// One training example as rendered by the chat template: the exact text the model sees, the
/// character spans that are training targets (assistant replies including their end-of-turn
/// marker; the whole text for raw-text data or when <c>train_on_responses_only</c> is false), and
/// the spans that came from the dataset (message contents). Special tokens are recognised only
/// outside <see cref="ContentSpans"/>, so dataset text cannot inject control tokens.
/// </summary>
public sealed record FormattedExample(string Text, IReadOnlyList<TextSpan> AssistantSpans, IReadOnlyList<TextSpan> ContentSpans);
