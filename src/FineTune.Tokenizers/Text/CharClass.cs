using System.Globalization;
using System.Text;

namespace FineTune.Tokenizers.Text;

/// <summary>The character classes the GPT-2/GPT-4 style split patterns are written in.</summary>
internal enum CharKind : byte
{
    /// <summary>Neither letter, number nor whitespace (punctuation, symbols, emoji, controls).</summary>
    Other = 0,
    /// <summary><c>\p{L}</c>.</summary>
    Letter = 1,
    /// <summary><c>\p{N}</c>.</summary>
    Number = 2,
    /// <summary><c>\s</c> except CR and LF.</summary>
    Space = 3,
    /// <summary><c>\r</c> or <c>\n</c> (also whitespace).</summary>
    NewLine = 4,
}

/// <summary>
/// Code-point classification with a table for the BMP. Whitespace follows Oniguruma's (and .NET's)
/// <c>\s</c>, which is what Hugging Face tokenizers use: U+0085 is whitespace, U+FEFF is not.
/// </summary>
internal static class CharClass
{
    private static readonly CharKind[] Bmp = BuildTable();

    private static CharKind[] BuildTable()
    {
        var table = new CharKind[65536];
        for (var c = 0; c < 65536; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) { table[c] = CharKind.Other; continue; }
            table[c] = Classify(CharUnicodeInfo.GetUnicodeCategory((char)c), (char)c);
        }
        return table;
    }

    private static CharKind Classify(UnicodeCategory category, char c)
    {
        if (c is '\r' or '\n') return CharKind.NewLine;
        if (char.IsWhiteSpace(c)) return CharKind.Space;
        return category switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharKind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharKind.Number,
            _ => CharKind.Other,
        };
    }

    /// <summary>Classifies the code point starting at <paramref name="i"/>; <paramref name="length"/> is 1 or 2 UTF-16 units.</summary>
    public static CharKind At(ReadOnlySpan<char> text, int i, out int length)
    {
        var c = text[i];
        if (!char.IsHighSurrogate(c) || i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
        {
            length = 1;
            return Bmp[c];
        }
        length = 2;
        var rune = new Rune(c, text[i + 1]);
        return Classify(Rune.GetUnicodeCategory(rune), '\0');
    }

    /// <summary>Rust's <c>char::is_whitespace</c> / .NET's <c>char.IsWhiteSpace</c> for a UTF-16 unit.</summary>
    public static bool IsWhiteSpace(char c) => Bmp[c] is CharKind.Space or CharKind.NewLine;
}
