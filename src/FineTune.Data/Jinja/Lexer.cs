using System.Text;

namespace FineTune.Data.Jinja;

/// <summary>
/// Splits preprocessed template text into tokens, with the same rules as @huggingface/jinja's
/// lexer (whitespace control with <c>-</c>, unary signs folded into numbers, <c>}}</c> allowed
/// inside object literals). Generation markers are transparent to whitespace control.
/// </summary>
internal sealed class Lexer
{
    private static readonly (string Seq, TokenType Type)[] Table =
    [
        ("{%", TokenType.OpenStatement), ("%}", TokenType.CloseStatement), ("{{", TokenType.OpenExpression), ("}}", TokenType.CloseExpression),
        ("(", TokenType.OpenParen), (")", TokenType.CloseParen), ("{", TokenType.OpenCurlyBracket), ("}", TokenType.CloseCurlyBracket),
        ("[", TokenType.OpenSquareBracket), ("]", TokenType.CloseSquareBracket), (",", TokenType.Comma), (".", TokenType.Dot),
        (":", TokenType.Colon), ("|", TokenType.Pipe),
        ("<=", TokenType.ComparisonBinaryOperator), (">=", TokenType.ComparisonBinaryOperator), ("==", TokenType.ComparisonBinaryOperator),
        ("!=", TokenType.ComparisonBinaryOperator), ("<", TokenType.ComparisonBinaryOperator), (">", TokenType.ComparisonBinaryOperator),
        ("+", TokenType.AdditiveBinaryOperator), ("-", TokenType.AdditiveBinaryOperator), ("~", TokenType.AdditiveBinaryOperator),
        ("**", TokenType.ExponentiationBinaryOperator), ("*", TokenType.MultiplicativeBinaryOperator),
        ("//", TokenType.MultiplicativeBinaryOperator), ("/", TokenType.MultiplicativeBinaryOperator), ("%", TokenType.MultiplicativeBinaryOperator),
        ("=", TokenType.Equals),
    ];

    private readonly string _src;
    private readonly int[] _map;
    private readonly Func<string, int, Exception> _error;
    private readonly List<Token> _tokens = [];
    private readonly StringBuilder _pendingMarkers = new();
    private int _pos;

    private Lexer(string src, int[] map, Func<string, int, Exception> error) => (_src, _map, _error) = (src, map, error);

    /// <summary>Tokenizes <paramref name="src"/>; <paramref name="error"/> builds a syntax error at an original offset.</summary>
    public static List<Token> Tokenize(string src, int[] map, Func<string, int, Exception> error) => new Lexer(src, map, error).Run();

    internal static bool IsJsSpace(char c) => c is '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or '\u00a0' or '\u1680' or '\u2028' or '\u2029'
        or '\u202f' or '\u205f' or '\u3000' or '\ufeff' || c is >= '\u2000' and <= '\u200a';

    private static bool IsMarker(char c) => c is Preprocessor.GenerationStart or Preprocessor.GenerationEnd;
    private static bool IsWord(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';
    private char At(int i) => i < _src.Length ? _src[i] : '\0';
    private int Offset(int i) => _map.Length == 0 ? 0 : _map[Math.Min(i, _map.Length - 1)];
    private bool Starts(string s) => string.CompareOrdinal(_src, _pos, s, 0, s.Length) == 0 && _pos + s.Length <= _src.Length;
    private Token? Last => _tokens.Count > 0 ? _tokens[^1] : null;

    private void Push(string value, TokenType type, int at)
    {
        if (_pendingMarkers.Length > 0)
        {
            // Markers skipped by whitespace control still mark their place in the output.
            if (type == TokenType.Text) value = _pendingMarkers + value;
            else _tokens.Add(new Token(_pendingMarkers.ToString(), TokenType.Text, Offset(at)));
            _pendingMarkers.Clear();
        }
        _tokens.Add(new Token(value, type, Offset(at)));
    }

    private List<Token> Run()
    {
        var curlyDepth = 0;
        while (_pos < _src.Length)
        {
            var lastType = Last?.Type;
            if (lastType is null or TokenType.CloseStatement or TokenType.CloseExpression or TokenType.Comment)
            {
                var start = _pos;
                while (_pos < _src.Length && !(_src[_pos] == '{' && At(_pos + 1) is '%' or '{' or '#')) _pos++;
                if (_pos > start)
                {
                    Push(_src[start.._pos], TokenType.Text, start);
                    continue;
                }
            }

            if (Starts("{#"))
            {
                var start = _pos;
                _pos += 2;
                var stripBefore = At(_pos) == '-';
                if (stripBefore) _pos++;
                var sb = new StringBuilder();
                while (At(_pos) != '#' || At(_pos + 1) != '}')
                {
                    if (_pos + 2 >= _src.Length) throw _error("Missing end of comment tag", start);
                    sb.Append(_src[_pos++]);
                }
                var comment = sb.ToString();
                var stripAfter = comment.EndsWith('-');
                if (stripAfter) comment = comment[..^1];
                if (stripBefore) StripTrailingWhitespace();
                Push(comment, TokenType.Comment, start);
                _pos += 2;
                if (stripAfter) SkipLeadingWhitespace();
                continue;
            }

            if (Starts("{%-"))
            {
                StripTrailingWhitespace();
                Push("{%", TokenType.OpenStatement, _pos);
                _pos += 3;
                continue;
            }
            if (Starts("{{-"))
            {
                StripTrailingWhitespace();
                Push("{{", TokenType.OpenExpression, _pos);
                curlyDepth = 0;
                _pos += 3;
                continue;
            }

            while (_pos < _src.Length && IsJsSpace(_src[_pos])) _pos++;
            if (_pos >= _src.Length) break;

            if (Starts("-%}"))
            {
                Push("%}", TokenType.CloseStatement, _pos);
                _pos += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (Starts("-}}"))
            {
                Push("}}", TokenType.CloseExpression, _pos);
                _pos += 3;
                SkipLeadingWhitespace();
                continue;
            }

            var c = _src[_pos];
            if (c is '-' or '+')
            {
                var lt = Last?.Type;
                if (lt is null or TokenType.Text) throw _error($"Unexpected character: {c}", _pos);
                if (lt is not (TokenType.Identifier or TokenType.NumericLiteral or TokenType.StringLiteral or TokenType.CloseParen or TokenType.CloseSquareBracket))
                {
                    var start = _pos++;
                    var num = ConsumeDigits();
                    if (num.Length > 0 && At(_pos) == '.' && char.IsAsciiDigit(At(_pos + 1)))
                    {
                        _pos++;
                        num = num + "." + ConsumeDigits();
                    }
                    Push(c + num, num.Length > 0 ? TokenType.NumericLiteral : TokenType.UnaryOperator, start);
                    continue;
                }
            }

            var matched = false;
            foreach (var (seq, type) in Table)
            {
                if (seq == "}}" && curlyDepth > 0) continue;
                if (!Starts(seq)) continue;
                Push(seq, type, _pos);
                if (type == TokenType.OpenExpression) curlyDepth = 0;
                else if (type == TokenType.OpenCurlyBracket) curlyDepth++;
                else if (type == TokenType.CloseCurlyBracket) curlyDepth--;
                _pos += seq.Length;
                matched = true;
                break;
            }
            if (matched) continue;

            if (c is '\'' or '"')
            {
                var start = _pos++;
                var str = ConsumeString(c, start);
                Push(str, TokenType.StringLiteral, start);
                _pos++;
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                var start = _pos;
                var num = ConsumeDigits();
                if (Last?.Type != TokenType.Dot && At(_pos) == '.' && char.IsAsciiDigit(At(_pos + 1)))
                {
                    _pos++;
                    num = num + "." + ConsumeDigits();
                }
                Push(num, TokenType.NumericLiteral, start);
                continue;
            }
            if (IsWord(c))
            {
                var start = _pos;
                while (_pos < _src.Length && IsWord(_src[_pos])) _pos++;
                Push(_src[start.._pos], TokenType.Identifier, start);
                continue;
            }
            throw _error($"Unexpected character: {c}", _pos);
        }
        if (_pendingMarkers.Length > 0) Push("", TokenType.Text, _src.Length);
        return _tokens;
    }

    private string ConsumeDigits()
    {
        var start = _pos;
        while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos])) _pos++;
        return _src[start.._pos];
    }

    private string ConsumeString(char quote, int start)
    {
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _src.Length) throw _error("Unterminated string literal", start);
            var ch = _src[_pos];
            if (ch == quote) return sb.ToString();
            if (ch == '\\')
            {
                _pos++;
                if (_pos >= _src.Length) throw _error("Unexpected end of input", start);
                var e = _src[_pos++];
                if (e is 'x' or 'u')
                {
                    var len = e == 'x' ? 2 : 4;
                    var hex = _pos + len <= _src.Length ? _src.Substring(_pos, len) : "";
                    if (hex.Length != len || !hex.All(char.IsAsciiHexDigit)) throw _error($"Invalid hexadecimal escape sequence: \\{e}{hex}", _pos - 2);
                    sb.Append((char)Convert.ToInt32(hex, 16));
                    _pos += len;
                    continue;
                }
                sb.Append(e switch
                {
                    'n' => '\n', 't' => '\t', 'r' => '\r', 'b' => '\b', 'f' => '\f', 'v' => '\v', '\'' => '\'', '"' => '"', '\\' => '\\',
                    _ => throw _error($"Unexpected escaped character: {e}", _pos - 2),
                });
                continue;
            }
            sb.Append(ch);
            _pos++;
        }
    }

    private void StripTrailingWhitespace()
    {
        if (Last is not { Type: TokenType.Text } last) return;
        // Trim whitespace from the end, keeping generation markers where they were.
        var v = last.Value;
        var sb = new StringBuilder();
        var i = v.Length - 1;
        for (; i >= 0; i--)
        {
            if (IsMarker(v[i])) sb.Insert(0, v[i]);
            else if (!IsJsSpace(v[i])) break;
        }
        last.Value = v[..(i + 1)] + sb;
        if (last.Value.Length == 0) _tokens.RemoveAt(_tokens.Count - 1);
    }

    private void SkipLeadingWhitespace()
    {
        while (_pos < _src.Length && (IsJsSpace(_src[_pos]) || IsMarker(_src[_pos])))
        {
            if (IsMarker(_src[_pos])) _pendingMarkers.Append(_src[_pos]);
            _pos++;
        }
    }
}
