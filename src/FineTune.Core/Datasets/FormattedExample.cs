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
/// character spans of the assistant replies (each including its end-of-turn marker; the whole
/// text for raw-text data), and the spans that came from the dataset (message contents). The
/// replies are the training targets unless <see cref="LossSpans"/> says otherwise
/// (<c>train_on_responses_only: false</c> puts the loss on the whole text but keeps the replies,
/// so a held-out prompt can still be cut where the first reply begins). Special tokens are
/// recognised only outside <see cref="ContentSpans"/>, so dataset text cannot inject control tokens.
/// <see cref="Source"/> says which dataset row it came from, so later steps can point there.
/// </summary>
public sealed record FormattedExample(string Text, IReadOnlyList<TextSpan> AssistantSpans, IReadOnlyList<TextSpan> ContentSpans,
    ExampleSource? Source = null, IReadOnlyList<TextSpan>? LossSpans = null)
{
    /// <summary>The characters the loss is computed on: <see cref="LossSpans"/> when set, else the replies.</summary>
    public IReadOnlyList<TextSpan> TargetSpans => LossSpans ?? AssistantSpans;

    /// <summary>The same example with the loss on every character (<c>train_on_responses_only: false</c>); the replies stay.</summary>
    public FormattedExample WithLossOnWholeText() => this with { LossSpans = [new TextSpan(0, Text.Length)] };
}

/// <summary>
/// The dataset row an example came from: the file as the project names it (relative to the
/// project folder, so cached results are the same in every checkout) and its 1-based line (JSONL,
/// CSV) or row (xlsx).
/// </summary>
public sealed record ExampleSource(string File, int Line);
