using System.Globalization;
using System.Text;

namespace FineTune.Ollama.Modelfiles;

/// <summary>
/// The lexical rules of Ollama's Modelfile format (github.com/ollama/ollama, parser/parser.go), shared
/// by <see cref="ModelfileParser"/> and <see cref="ModelfileWriter"/>.
/// </summary>
/// <remarks>
/// The format has no escape sequences. A value ends at the first line break after which the value
/// read so far, trimmed of white space, is "complete": it does not start with a quote, or it starts
/// with <c>"""</c> and ends with <c>"""</c> (at least six characters), or it starts with one <c>"</c>
/// and ends with <c>"</c>. Inside a value, characters that Go's <c>strconv.IsPrint</c> rejects (other
/// than space, tab and line breaks) are silently dropped. Quoting therefore has to pick a form whose
/// closing condition cannot be met early by the text itself, and some texts cannot be written at all.
/// </remarks>
public static class ModelfileText
{
    /// <summary>True for the characters Ollama keeps inside a value: Go's <c>strconv.IsPrint</c> plus tab and line breaks.</summary>
    public static bool IsKept(Rune r) => r.Value is '\t' or '\n' or '\r' || IsPrint(r);

    /// <summary>Go's <c>unicode.IsPrint</c>: letters, marks, numbers, punctuation, symbols and the ASCII space.</summary>
    public static bool IsPrint(Rune r)
    {
        if (r.Value == ' ') return true;
        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => true,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
            UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => true,
            UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol => true,
            _ => false,
        };
    }

    /// <summary>Space or tab: the separators between a command, its key and its value.</summary>
    public static bool IsBlank(char c) => c is ' ' or '\t';

    /// <summary>Carriage return or line feed (each counts as a line break for Ollama).</summary>
    public static bool IsLineBreak(char c) => c is '\r' or '\n';

    /// <summary>
    /// Ollama's unquoting of a value read so far (after trimming): the unquoted text, or null when a
    /// quoted value is still open and the line break belongs to it.
    /// </summary>
    public static string? Unquote(string trimmed)
    {
        if (trimmed.StartsWith("\"\"\"", StringComparison.Ordinal))
            return trimmed.Length >= 6 && trimmed.EndsWith("\"\"\"", StringComparison.Ordinal) ? trimmed[3..^3] : null;
        if (trimmed.StartsWith('"'))
            return trimmed.Length >= 2 && trimmed.EndsWith('"') ? trimmed[1..^1] : null;
        return trimmed;
    }

    /// <summary>Trims what Go's <c>strings.TrimSpace</c> trims from a value (only blanks and line breaks can reach it).</summary>
    public static string Trim(string s) => s.Trim(' ', '\t', '\r', '\n');

    private static string TrimEnd(ReadOnlySpan<char> s) => s.TrimEnd(" \t\r\n").ToString();

    /// <summary>
    /// Writes <paramref name="value"/> so that Ollama reads back exactly <paramref name="value"/>: bare when
    /// it is one line without surrounding blanks and no leading quote, else in <c>"..."</c> (one line) or
    /// <c>"""..."""</c>, whichever cannot be closed early by the text itself.
    /// </summary>
    /// <param name="value">The text to write.</param>
    /// <param name="what">What the text is (e.g. <c>SYSTEM</c>), for the error message.</param>
    /// <exception cref="Core.Diagnostics.FineTuneException">FT5002 when no form carries the text unchanged.</exception>
    public static string Quote(string value, string what)
    {
        CheckKept(value, what);
        if (value.Length > 0 && value == Trim(value) && value.IndexOfAny(['\r', '\n']) < 0 && value[0] != '"')
            return value;
        // One line: "..." unless the text starts with two quotes; then """...""" always works (no line break
        // can close it early). Several lines: """...""", as Ollama's documentation writes them; when a line
        // ends with """ the one-quote form would close at that line too, so there is no fallback.
        var multiLine = value.IndexOfAny(['\r', '\n']) >= 0;
        if (!multiLine && CanQuote(value, "\"")) return "\"" + value + "\"";
        if (CanQuote(value, "\"\"\"")) return "\"\"\"" + value + "\"\"\"";
        var line = 1 + value.AsSpan(0, FirstEarlyClose(value, "\"\"\"")).Count('\n');
        throw new Core.Diagnostics.FineTuneException(OllamaErrorCodes.UnrepresentableText,
            $"{what} cannot be written to a Modelfile: its line {line} ends with \"\"\", where Ollama would end a quoted value, and the Modelfile format has no escapes. " +
            "Add a character after the quotes on that line.");
    }

    /// <summary>True when <c>quote + value + quote</c> is read back as <paramref name="value"/> by Ollama.</summary>
    private static bool CanQuote(string value, string quote)
    {
        // A single quote followed by a text starting with two quotes (or by a lone quote and the closing
        // one) opens a triple-quoted value instead.
        if (quote.Length == 1 && (value == "\"" || value.StartsWith("\"\"", StringComparison.Ordinal))) return false;
        return FirstEarlyClose(value, quote) < 0;
    }

    /// <summary>Index of the first line break at which <c>quote + value[..i]</c> would already be a complete value, or -1.</summary>
    private static int FirstEarlyClose(string value, string quote)
    {
        for (var i = 0; i < value.Length; i++)
        {
            if (!IsLineBreak(value[i])) continue;
            var soFar = TrimEnd(value.AsSpan(0, i));
            if (soFar.Length > 0 && soFar.EndsWith(quote, StringComparison.Ordinal)) return i;
        }
        return -1;
    }

    private static void CheckKept(string value, string what)
    {
        var index = 0;
        foreach (var rune in EnumerateRunes(value, what))
        {
            if (!IsKept(rune))
            {
                var line = 1 + value.AsSpan(0, index).Count('\n');
                throw new Core.Diagnostics.FineTuneException(OllamaErrorCodes.UnrepresentableText,
                    $"{what} contains U+{rune.Value:X4} ({Rune.GetUnicodeCategory(rune)}) on its line {line}, which Ollama drops when it reads a Modelfile " +
                    "(it keeps only printable characters, spaces, tabs and line breaks). Remove or replace it.");
            }
            index += rune.Utf16SequenceLength;
        }
    }

    private static IEnumerable<Rune> EnumerateRunes(string value, string what)
    {
        for (var i = 0; i < value.Length;)
        {
            if (Rune.DecodeFromUtf16(value.AsSpan(i), out var rune, out var used) != System.Buffers.OperationStatus.Done)
                throw new Core.Diagnostics.FineTuneException(OllamaErrorCodes.UnrepresentableText,
                    $"{what} contains an unpaired UTF-16 surrogate at offset {i}, which is not valid text.");
            yield return rune;
            i += used;
        }
    }
}
