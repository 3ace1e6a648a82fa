using System.Globalization;

namespace FineTune.Data.Jinja;

/// <summary>
/// Builds the syntax tree from tokens with @huggingface/jinja's grammar and precedence (ternary,
/// or, and, not, comparison/in, additive, multiplicative, power, is-tests, filters, unary sign,
/// calls and members). Nesting is bounded so a hostile template cannot overflow the stack.
/// </summary>
internal sealed class Parser
{
    private const int MaxNesting = 200;
    private static readonly HashSet<string> KnownUnsupported = ["include", "import", "from", "extends", "block", "raw", "with", "autoescape", "do", "trans"];

    private readonly List<Token> _tokens;
    private readonly Func<string, string, int, Exception> _error;
    private int _current;
    private int _depth;

    private Parser(List<Token> tokens, Func<string, string, int, Exception> error) => (_tokens, _error) = (tokens, error);

    /// <summary>Parses tokens; <paramref name="error"/> builds an error (code, message, offset).</summary>
    public static TemplateBody Parse(List<Token> tokens, Func<string, string, int, Exception> error)
    {
        var p = new Parser(tokens, error);
        var body = new List<Node>();
        while (p._current < tokens.Count) body.Add(p.ParseAny());
        return new TemplateBody(body);
    }

    private Token Peek(int ahead = 0) => _current + ahead < _tokens.Count ? _tokens[_current + ahead] : null!;
    private int Here => _current < _tokens.Count ? _tokens[_current].Offset : (_tokens.Count > 0 ? _tokens[^1].Offset : 0);

    private Exception Syntax(string message, int? at = null) => _error(JinjaErrors.Syntax, message, at ?? Here);

    private Token Expect(TokenType type, string what)
    {
        if (_current >= _tokens.Count) throw Syntax($"Unexpected end of template: expected {what}");
        var t = _tokens[_current];
        if (t.Type != type) throw Syntax($"Expected {what}, found '{t.Value}'", t.Offset);
        _current++;
        return t;
    }

    private bool Is(params TokenType[] types)
    {
        if (_current + types.Length > _tokens.Count) return false;
        for (var i = 0; i < types.Length; i++) if (_tokens[_current + i].Type != types[i]) return false;
        return true;
    }

    private bool IsIdentifier(params string[] names)
    {
        if (_current + names.Length > _tokens.Count) return false;
        for (var i = 0; i < names.Length; i++)
            if (_tokens[_current + i].Type != TokenType.Identifier || _tokens[_current + i].Value != names[i]) return false;
        return true;
    }

    private bool IsStatement(params string[] names) =>
        Peek()?.Type == TokenType.OpenStatement && Peek(1)?.Type == TokenType.Identifier && names.Contains(Peek(1).Value);

    private void ExpectIdentifier(string name)
    {
        if (!IsIdentifier(name)) throw Syntax($"Expected '{name}'");
        _current++;
    }

    private T Nested<T>(Func<T> parse)
    {
        if (++_depth > MaxNesting) throw _error(JinjaErrors.Limit, $"Template nests blocks or expressions more than {MaxNesting} deep", Here);
        try { return parse(); }
        finally { _depth--; }
    }

    private List<Node> ParseUntil(string what, params string[] statements)
    {
        var body = new List<Node>();
        while (!IsStatement(statements))
        {
            if (_current >= _tokens.Count) throw Syntax($"Unexpected end of template: missing {{% {what} %}}");
            body.Add(ParseAny());
        }
        return body;
    }

    private Node ParseAny() => Nested<Node>(() =>
    {
        var t = _tokens[_current];
        switch (t.Type)
        {
            case TokenType.Comment: _current++; return new CommentNode(t.Offset);
            case TokenType.Text: _current++; return new TextNode(t.Value, t.Offset);
            case TokenType.OpenStatement: return ParseStatement();
            case TokenType.OpenExpression:
                _current++;
                var e = ParseExpression();
                Expect(TokenType.CloseExpression, "'}}'");
                return e;
            default: throw Syntax($"Unexpected '{t.Value}'", t.Offset);
        }
    });

    private void ExpectEnd(string name)
    {
        Expect(TokenType.OpenStatement, "'{%'");
        ExpectIdentifier(name);
        Expect(TokenType.CloseStatement, "'%}'");
    }

    private Node ParseStatement()
    {
        var open = Expect(TokenType.OpenStatement, "'{%'");
        if (Peek()?.Type != TokenType.Identifier) throw Syntax("Expected a statement name after '{%'");
        var nameToken = _tokens[_current];
        var name = nameToken.Value;
        switch (name)
        {
            case "set":
                _current++;
                return ParseSet(open.Offset);
            case "if":
            {
                _current++;
                var node = ParseIf(open.Offset);
                ExpectEnd("endif");
                return node;
            }
            case "macro":
            {
                _current++;
                var id = ParsePrimary();
                if (id is not IdentifierNode macroName) throw Syntax("Expected a name after 'macro'", id.Offset);
                var parameters = ParseArgs(parameters: true);
                Expect(TokenType.CloseStatement, "'%}'");
                var body = ParseUntil("endmacro", "endmacro");
                ExpectEnd("endmacro");
                return new MacroNode(macroName.Name, parameters, body, open.Offset);
            }
            case "for":
            {
                _current++;
                var node = ParseFor(open.Offset);
                ExpectEnd("endfor");
                return node;
            }
            case "call":
            {
                _current++;
                List<Node>? callerArgs = Is(TokenType.OpenParen) ? ParseArgs(parameters: true) : null;
                var callee = ParsePrimary();
                if (callee is not IdentifierNode) throw Syntax("Expected a macro name after 'call'", callee.Offset);
                var args = ParseArgs(parameters: false);
                Expect(TokenType.CloseStatement, "'%}'");
                var body = ParseUntil("endcall", "endcall");
                ExpectEnd("endcall");
                return new CallBlockNode(new CallNode(callee, args, callee.Offset), callerArgs, body, open.Offset);
            }
            case "break":
                _current++;
                Expect(TokenType.CloseStatement, "'%}'");
                return new BreakNode(open.Offset);
            case "continue":
                _current++;
                Expect(TokenType.CloseStatement, "'%}'");
                return new ContinueNode(open.Offset);
            case "filter":
            {
                _current++;
                Node filter = ParsePrimary();
                if (filter is IdentifierNode && Is(TokenType.OpenParen)) filter = ParseCall(filter);
                Expect(TokenType.CloseStatement, "'%}'");
                var body = ParseUntil("endfilter", "endfilter");
                ExpectEnd("endfilter");
                return new FilterBlockNode(filter, body, open.Offset);
            }
            default:
                if (KnownUnsupported.Contains(name))
                    throw _error(JinjaErrors.Unsupported, $"The {{% {name} %}} statement is not supported in chat templates (they are rendered without files or other templates)", nameToken.Offset);
                throw _error(JinjaErrors.Unsupported, $"Unknown statement {{% {name} %}}", nameToken.Offset);
        }
    }

    private Node ParseSet(int at)
    {
        var left = ParseExpressionSequence();
        Node? value = null;
        List<Node> body = [];
        if (Is(TokenType.Equals))
        {
            _current++;
            value = ParseExpressionSequence();
        }
        else
        {
            Expect(TokenType.CloseStatement, "'%}' or '='");
            body = ParseUntil("endset", "endset");
            Expect(TokenType.OpenStatement, "'{%'");
            ExpectIdentifier("endset");
        }
        Expect(TokenType.CloseStatement, "'%}'");
        return new SetNode(left, value, body, at);
    }

    private IfNode ParseIf(int at) => Nested(() =>
    {
        var test = ParseExpression();
        Expect(TokenType.CloseStatement, "'%}'");
        var body = ParseUntil("endif", "elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            var elifAt = Peek().Offset;
            _current += 2;
            alternate.Add(ParseIf(elifAt));
        }
        else if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "'%}'");
            alternate.AddRange(ParseUntil("endif", "endif"));
        }
        return new IfNode(test, body, alternate, at);
    });

    private ForNode ParseFor(int at)
    {
        var target = ParseExpressionSequence(primary: true);
        if (target is not (IdentifierNode or TupleLiteralNode)) throw Syntax("Expected a name or names after 'for'", target.Offset);
        if (!IsIdentifier("in")) throw Syntax("Expected 'in' after the loop variable");
        _current++;
        var iterable = ParseExpression();
        Expect(TokenType.CloseStatement, "'%}'");
        var body = ParseUntil("endfor", "endfor", "else");
        var alternative = new List<Node>();
        if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "'%}'");
            alternative = ParseUntil("endfor", "endfor");
        }
        return new ForNode(target, iterable, body, alternative, at);
    }

    private Node ParseExpressionSequence(bool primary = false)
    {
        var at = Here;
        var expressions = new List<Node> { primary ? ParsePrimary() : ParseExpression() };
        var isTuple = Is(TokenType.Comma);
        while (isTuple)
        {
            _current++;
            expressions.Add(primary ? ParsePrimary() : ParseExpression());
            if (!Is(TokenType.Comma)) break;
        }
        return isTuple ? new TupleLiteralNode(expressions, at) : expressions[0];
    }

    private Node ParseExpression() => Nested(ParseIfExpression);

    private Node ParseIfExpression()
    {
        var a = ParseOr();
        if (!IsIdentifier("if")) return a;
        var at = Peek().Offset;
        _current++;
        var test = ParseOr();
        if (IsIdentifier("else"))
        {
            _current++;
            var falseExpr = Nested(ParseIfExpression);
            return new TernaryNode(test, a, falseExpr, at);
        }
        return new SelectNode(a, test, at);
    }

    private Node ParseOr()
    {
        var left = ParseAnd();
        while (IsIdentifier("or"))
        {
            var at = Peek().Offset;
            _current++;
            left = new BinaryNode("or", left, ParseAnd(), at);
        }
        return left;
    }

    private Node ParseAnd()
    {
        var left = ParseNot();
        while (IsIdentifier("and"))
        {
            var at = Peek().Offset;
            _current++;
            left = new BinaryNode("and", left, ParseNot(), at);
        }
        return left;
    }

    private Node ParseNot()
    {
        if (!IsIdentifier("not")) return ParseComparison();
        UnaryNode? right = null;
        while (IsIdentifier("not"))
        {
            var at = Peek().Offset;
            _current++;
            var arg = Nested(ParseNot);
            right = new UnaryNode("not", arg, at);
        }
        return right!;
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            string op;
            var at = Here;
            if (IsIdentifier("not", "in")) { op = "not in"; _current += 2; }
            else if (IsIdentifier("in")) { op = "in"; _current++; }
            else if (Is(TokenType.ComparisonBinaryOperator)) op = _tokens[_current++].Value;
            else break;
            left = new BinaryNode(op, left, ParseAdditive(), at);
        }
        return left;
    }

    private Node ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Is(TokenType.AdditiveBinaryOperator))
        {
            var t = _tokens[_current++];
            left = new BinaryNode(t.Value, left, ParseMultiplicative(), t.Offset);
        }
        return left;
    }

    private Node ParseMultiplicative()
    {
        var left = ParsePower();
        while (Is(TokenType.MultiplicativeBinaryOperator))
        {
            var t = _tokens[_current++];
            left = new BinaryNode(t.Value, left, ParsePower(), t.Offset);
        }
        return left;
    }

    private Node ParsePower()
    {
        var left = ParseTest();
        while (Is(TokenType.ExponentiationBinaryOperator))
        {
            var t = _tokens[_current++];
            left = new BinaryNode(t.Value, left, ParseTest(), t.Offset);
        }
        return left;
    }

    private Node ParseTest()
    {
        var operand = ParseFilter();
        while (IsIdentifier("is"))
        {
            var at = Peek().Offset;
            _current++;
            var negate = IsIdentifier("not");
            if (negate) _current++;
            var test = ParsePrimary();
            // `is none`, `is true`, ... are identifiers here even though they are also constants.
            if (test is not IdentifierNode id) throw Syntax("Expected a test name after 'is'", test.Offset);
            if (!Tests.Names.Contains(id.Name))
                throw _error(JinjaErrors.Unsupported, $"Unknown test 'is {id.Name}'", id.Offset);
            if (Is(TokenType.OpenParen))
                throw _error(JinjaErrors.Unsupported, $"The test '{id.Name}' with arguments is not supported", id.Offset);
            operand = new TestNode(operand, negate, id.Name, at);
        }
        return operand;
    }

    private Node ParseFilter()
    {
        var operand = ParseUnarySign();
        while (Is(TokenType.Pipe))
        {
            var at = Peek().Offset;
            _current++;
            Node filter = ParsePrimary();
            if (filter is not IdentifierNode) throw Syntax("Expected a filter name after '|'", filter.Offset);
            if (Is(TokenType.OpenParen)) filter = ParseCall(filter);
            operand = new FilterNode(operand, filter, at);
        }
        return operand;
    }

    private Node ParseUnarySign()
    {
        var t = Peek();
        if (t is { Type: TokenType.UnaryOperator or TokenType.AdditiveBinaryOperator, Value: "-" or "+" })
        {
            _current++;
            return new UnaryNode(t.Value, Nested(ParseUnarySign), t.Offset);
        }
        return ParseCallMember();
    }

    private Node ParseCallMember()
    {
        var member = ParseMember(ParsePrimary());
        return Is(TokenType.OpenParen) ? ParseCall(member) : member;
    }

    private Node ParseCall(Node callee)
    {
        Node expression = new CallNode(callee, ParseArgs(parameters: false), callee.Offset);
        expression = ParseMember(expression);
        if (Is(TokenType.OpenParen)) expression = Nested(() => ParseCall(expression));
        return expression;
    }

    private List<Node> ParseArgs(bool parameters)
    {
        Expect(TokenType.OpenParen, "'('");
        var args = new List<Node>();
        var names = new HashSet<string>();
        var sawKeyword = false;
        var sawSpread = false;
        while (!Is(TokenType.CloseParen))
        {
            if (_current >= _tokens.Count) throw Syntax("Unexpected end of template: missing ')'");
            var at = Here;
            var keywordSpread = Is(TokenType.ExponentiationBinaryOperator);
            var positionalSpread = Is(TokenType.MultiplicativeBinaryOperator) && _tokens[_current].Value == "*";
            if (parameters && (keywordSpread || positionalSpread)) throw Syntax("Argument unpacking is not allowed in parameter declarations");
            if (keywordSpread)
            {
                _current++;
                args.Add(new KeywordSpreadNode(ParseExpression(), at));
                if (Is(TokenType.Comma)) _current++;
                if (!Is(TokenType.CloseParen)) throw Syntax("'**' must be applied to the final argument");
                break;
            }
            Node argument;
            if (positionalSpread)
            {
                if (sawSpread) throw Syntax("Only one '*' argument unpacking is allowed");
                sawSpread = true;
                _current++;
                argument = new SpreadNode(ParseExpression(), at);
            }
            else
            {
                argument = ParseExpression();
                if (Is(TokenType.Equals))
                {
                    _current++;
                    if (argument is not IdentifierNode key)
                        throw Syntax(parameters ? "Expected a parameter name" : "Expected a name for the keyword argument", argument.Offset);
                    argument = new KeywordArgumentNode(key, ParseExpression(), at);
                }
                if (parameters)
                {
                    var name = argument switch
                    {
                        IdentifierNode i => i.Name,
                        KeywordArgumentNode k => k.Key.Name,
                        _ => throw Syntax("Expected a parameter name", argument.Offset),
                    };
                    if (!names.Add(name)) throw Syntax($"Duplicate parameter name: {name}", argument.Offset);
                }
                if (argument is KeywordArgumentNode) sawKeyword = true;
                else if (sawKeyword) throw Syntax(parameters ? "Non-default argument follows default argument" : "Positional arguments must come before keyword arguments", argument.Offset);
                else if (sawSpread) throw Syntax("Positional arguments must not follow '*' argument unpacking", argument.Offset);
            }
            args.Add(argument);
            if (Is(TokenType.Comma)) _current++;
        }
        Expect(TokenType.CloseParen, "')'");
        return args;
    }

    private Node ParseMemberArguments()
    {
        var at = Here;
        var slices = new List<Node?>();
        var isSlice = false;
        while (!Is(TokenType.CloseSquareBracket))
        {
            if (_current >= _tokens.Count) throw Syntax("Unexpected end of template: missing ']'");
            if (Is(TokenType.Colon))
            {
                slices.Add(null);
                _current++;
                isSlice = true;
            }
            else
            {
                slices.Add(ParseExpression());
                if (Is(TokenType.Colon))
                {
                    _current++;
                    isSlice = true;
                }
            }
        }
        if (slices.Count == 0) throw Syntax("Expected an index or a slice inside '[]'");
        if (!isSlice) return slices[0]!;
        if (slices.Count > 3) throw Syntax("A slice takes at most 3 parts");
        return new SliceNode(slices.ElementAtOrDefault(0), slices.ElementAtOrDefault(1), slices.ElementAtOrDefault(2), at);
    }

    private Node ParseMember(Node obj)
    {
        while (Is(TokenType.Dot) || Is(TokenType.OpenSquareBracket))
        {
            var op = _tokens[_current++];
            if (op.Type == TokenType.OpenSquareBracket)
            {
                var property = Nested(ParseMemberArguments);
                Expect(TokenType.CloseSquareBracket, "']'");
                obj = new MemberNode(obj, property, true, obj.Offset);
            }
            else
            {
                var property = ParsePrimary();
                if (property is not (IdentifierNode or IntegerLiteralNode)) throw Syntax("Expected a name after '.'", property.Offset);
                obj = new MemberNode(obj, property, false, obj.Offset);
            }
        }
        return obj;
    }

    private Node ParsePrimary()
    {
        if (_current >= _tokens.Count) throw Syntax("Unexpected end of template");
        var t = _tokens[_current++];
        switch (t.Type)
        {
            case TokenType.NumericLiteral:
                if (t.Value.Contains('.')) return new FloatLiteralNode(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Offset);
                return long.TryParse(t.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                    ? new IntegerLiteralNode(l, t.Offset)
                    : new FloatLiteralNode(double.Parse(t.Value, CultureInfo.InvariantCulture), t.Offset);
            case TokenType.StringLiteral:
            {
                var value = t.Value;
                while (Is(TokenType.StringLiteral)) value += _tokens[_current++].Value;
                return new StringLiteralNode(value, t.Offset);
            }
            case TokenType.Identifier:
                return new IdentifierNode(t.Value, t.Offset);
            case TokenType.OpenParen:
            {
                var e = Nested(() => ParseExpressionSequence());
                Expect(TokenType.CloseParen, "')'");
                return e;
            }
            case TokenType.OpenSquareBracket:
            {
                var values = new List<Node>();
                while (!Is(TokenType.CloseSquareBracket))
                {
                    if (_current >= _tokens.Count) throw Syntax("Unexpected end of template: missing ']'");
                    values.Add(ParseExpression());
                    if (Is(TokenType.Comma)) _current++;
                }
                _current++;
                return new ArrayLiteralNode(values, t.Offset);
            }
            case TokenType.OpenCurlyBracket:
            {
                var entries = new List<(Node, Node)>();
                while (!Is(TokenType.CloseCurlyBracket))
                {
                    if (_current >= _tokens.Count) throw Syntax("Unexpected end of template: missing '}'");
                    var key = ParseExpression();
                    Expect(TokenType.Colon, "':' between key and value");
                    entries.Add((key, ParseExpression()));
                    if (Is(TokenType.Comma)) _current++;
                }
                _current++;
                return new ObjectLiteralNode(entries, t.Offset);
            }
            default:
                throw Syntax($"Unexpected '{t.Value}'", t.Offset);
        }
    }
}
