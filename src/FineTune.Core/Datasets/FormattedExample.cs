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
/// <see cref="Source"/> says which dataset row it came from, so later steps can point there.
/// </summary>
public sealed record FormattedExample(string Text, IReadOnlyList<TextSpan> AssistantSpans, IReadOnlyList<TextSpan> ContentSpans, ExampleSource? Source = null);

/// <summary>
/// The dataset row an example came from: the file as the project names it (relative to the
/// project folder, so cached results are the same in every checkout) and its 1-based line (JSONL,
/// CSV) or row (xlsx).
/// </summary>
public sealed record ExampleSource(string File, int Line);
