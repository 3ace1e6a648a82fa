using System.Globalization;
using System.Text;

namespace FineTune.Ollama.TestServer;

/// <summary>
/// Go's <c>strconv.Quote</c>, which Ollama's <c>/api/show</c> uses (through <c>%#v</c>) for string
/// parameters: printable characters as they are, the C escapes, <c>\x</c> below U+0020 and for DEL,
/// <c>\u</c>/<c>\U</c> for other characters Go does not consider printable (e.g. U+00A0, U+200B).
/// </summary>
public static class GoQuote
{
    /// <summary>Quotes <paramref name="s"/> as Go does.</summary>
    public static string Quote(string s)
    {
        var b = new StringBuilder("\"");
        foreach (var rune in s.EnumerateRunes())
        {
            var r = rune.Value;
            switch (r)
            {
                case '"': b.Append("\\\""); continue;
                case '\\': b.Append("\\\\"); continue;
                case 7: b.Append("\\a"); continue;
                case 8: b.Append("\\b"); continue;
                case 12: b.Append("\\f"); continue;
                case 10: b.Append("\\n"); continue;
                case 13: b.Append("\\r"); continue;
                case 9: b.Append("\\t"); continue;
                case 11: b.Append("\\v"); continue;
            }
            if (IsPrint(rune)) b.Append(rune.ToString());
            else if (r < 0x20 || r == 0x7F) b.Append("\\x").Append(r.ToString("x2", CultureInfo.InvariantCulture));
            else if (r < 0x10000) b.Append("\\u").Append(r.ToString("x4", CultureInfo.InvariantCulture));
            else b.Append("\\U").Append(r.ToString("x8", CultureInfo.InvariantCulture));
        }
        return b.Append('"').ToString();
    }

    // Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space only.
    private static bool IsPrint(Rune rune) => rune.Value == ' ' || Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
            or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation
            or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol or UnicodeCategory.OtherSymbol => true,
        _ => false,
    };
}
