namespace FineTune.Data.Jinja;

internal enum TokenType
{
    Text, NumericLiteral, StringLiteral, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement,
    OpenExpression, CloseExpression, OpenSquareBracket, CloseSquareBracket, OpenCurlyBracket, CloseCurlyBracket,
    Comma, Dot, Colon, Pipe, AdditiveBinaryOperator, MultiplicativeBinaryOperator, ExponentiationBinaryOperator,
    ComparisonBinaryOperator, UnaryOperator, Comment,
}

/// <summary>A lexed token; <see cref="Offset"/> is its position in the original template text.</summary>
internal sealed class Token(string value, TokenType type, int offset)
{
    public string Value { get; set; } = value;
    public TokenType Type { get; } = type;
    public int Offset { get; } = offset;
    public override string ToString() => $"{Type}({Value})";
}
