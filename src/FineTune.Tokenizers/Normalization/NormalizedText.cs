using System.Text;

namespace FineTune.Tokenizers.Normalization;

/// <summary>
/// Text after normalization plus, for every UTF-16 unit, the range of the input it came from
/// (so token offsets point into the caller's string). Null alignment means "identical to the input".
/// </summary>
internal sealed class NormalizedText
{
    public NormalizedText(string text, int[]? starts, int[]? ends, int inputLength)
    {
        Text = text;
        Starts = starts;
        Ends = ends;
        InputLength = inputLength;
    }

    public string Text { get; }

    /// <summary>Input offset where unit i starts; null when the text is the unchanged input.</summary>
    public int[]? Starts { get; }

    /// <summary>Input offset where unit i ends; null when the text is the unchanged input.</summary>
    public int[]? Ends { get; }

    /// <summary>Length of the input this text was produced from.</summary>
    public int InputLength { get; }

    public static NormalizedText Identity(string text) => new(text, null, null, text.Length);

    /// <summary>Input offset where unit <paramref name="i"/> starts (the input's end for i == Text.Length).</summary>
    public int StartOf(int i) => Starts is null ? i : (i < Starts.Length ? Starts[i] : InputLength);

    /// <summary>Input offset where unit <paramref name="i"/> ends.</summary>
    public int EndOf(int i) => Ends is null ? i + 1 : Ends[i];
}

/// <summary>Builds a <see cref="NormalizedText"/> piece by piece, recording where each piece came from.</summary>
internal sealed class AlignedBuilder
{
    private readonly StringBuilder _text;
    private readonly List<int> _starts;
    private readonly List<int> _ends;
    private readonly NormalizedText _source;

    public AlignedBuilder(NormalizedText source)
    {
        _source = source;
        _text = new StringBuilder(source.Text.Length + 8);
        _starts = new List<int>(source.Text.Length + 8);
        _ends = new List<int>(source.Text.Length + 8);
    }

    /// <summary>Appends <paramref name="piece"/>, produced from source units [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public void Append(ReadOnlySpan<char> piece, int from, int to)
    {
        int start, end;
        if (to > from)
        {
            start = _source.StartOf(from);
            end = _source.EndOf(to - 1);
        }
        else
        {
            // Inserted text (a prefix, a replacement of nothing) takes a zero-width range at its position.
            start = end = from < _source.Text.Length ? _source.StartOf(from) : _source.InputLength;
        }
        _text.Append(piece);
        for (var i = 0; i < piece.Length; i++)
        {
            _starts.Add(start);
            _ends.Add(end);
        }
    }

    /// <summary>Copies source units [from, to) unchanged, keeping their own alignment.</summary>
    public void Copy(int from, int to)
    {
        _text.Append(_source.Text, from, to - from);
        for (var i = from; i < to; i++)
        {
            _starts.Add(_source.StartOf(i));
            _ends.Add(_source.EndOf(i));
        }
    }

    public NormalizedText Build() =>
        new(_text.ToString(), _starts.ToArray(), _ends.ToArray(), _source.InputLength);
}
