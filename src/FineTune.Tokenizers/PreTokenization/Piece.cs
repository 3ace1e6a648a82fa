namespace FineTune.Tokenizers.PreTokenization;

/// <summary>
/// A pre-token: units [Start, End) of the normalized text, optionally preceded by inserted text
/// (<see cref="Prefix"/>, e.g. ByteLevel's prefix space or Metaspace's ▁) that has no input range.
/// </summary>
internal readonly record struct Piece(int Start, int End, string? Prefix = null)
{
    public int Length => End - Start + (Prefix?.Length ?? 0);
}

/// <summary>The pieces of one section of input, as pre-tokenizers refine them.</summary>
internal sealed class PreTokenizeContext
{
    public string Text = "";

    /// <summary>True when the section starts at the beginning of the whole input (Metaspace "first").</summary>
    public bool IsFirstSection;

    public List<Piece> Pieces = new();

    public List<Piece> Scratch = new();

    public void Reset(string text, bool isFirstSection)
    {
        Text = text;
        IsFirstSection = isFirstSection;
        Pieces.Clear();
        Scratch.Clear();
        if (text.Length > 0) Pieces.Add(new Piece(0, text.Length));
    }

    /// <summary>The piece's text; allocates only when it has a prefix.</summary>
    public ReadOnlySpan<char> View(in Piece piece) =>
        piece.Prefix is null ? Text.AsSpan(piece.Start, piece.End - piece.Start) : string.Concat(piece.Prefix, Text.AsSpan(piece.Start, piece.End - piece.Start));

    /// <summary>Maps a sub-range [a, b) of <see cref="View"/>(piece) back to a piece.</summary>
    public static Piece SubPiece(in Piece piece, int a, int b)
    {
        var p = piece.Prefix?.Length ?? 0;
        if (p == 0) return new Piece(piece.Start + a, piece.Start + b);
        string? prefix = a < p ? piece.Prefix!.Substring(a, Math.Min(b, p) - a) : null;
        var start = piece.Start + Math.Max(0, a - p);
        var end = piece.Start + Math.Max(0, b - p);
        return new Piece(start, end, prefix);
    }

    public void SwapScratch()
    {
        (Pieces, Scratch) = (Scratch, Pieces);
        Scratch.Clear();
    }
}
