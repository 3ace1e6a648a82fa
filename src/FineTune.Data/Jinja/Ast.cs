namespace FineTune.Data.Jinja;

/// <summary>A node of the template's syntax tree; <see cref="Offset"/> is where it starts in the source.</summary>
internal abstract record Node(int Offset);

// Statements
internal sealed record TemplateBody(IReadOnlyList<Node> Body) : Node(0);
internal sealed record TextNode(string Value, int At) : Node(At);
internal sealed record CommentNode(int At) : Node(At);
internal sealed record IfNode(Node Test, IReadOnlyList<Node> Body, IReadOnlyList<Node> Alternate, int At) : Node(At);
internal sealed record ForNode(Node Target, Node Iterable, IReadOnlyList<Node> Body, IReadOnlyList<Node> Else, int At) : Node(At);
internal sealed record SetNode(Node Target, Node? Value, IReadOnlyList<Node> Body, int At) : Node(At);
internal sealed record MacroNode(string Name, IReadOnlyList<Node> Parameters, IReadOnlyList<Node> Body, int At) : Node(At);
internal sealed record CallBlockNode(CallNode Call, IReadOnlyList<Node>? CallerParameters, IReadOnlyList<Node> Body, int At) : Node(At);
internal sealed record FilterBlockNode(Node Filter, IReadOnlyList<Node> Body, int At) : Node(At);
internal sealed record BreakNode(int At) : Node(At);
internal sealed record ContinueNode(int At) : Node(At);

// Expressions
internal sealed record StringLiteralNode(string Value, int At) : Node(At);
internal sealed record IntegerLiteralNode(long Value, int At) : Node(At);
internal sealed record FloatLiteralNode(double Value, int At) : Node(At);
internal sealed record ArrayLiteralNode(IReadOnlyList<Node> Items, int At) : Node(At);
internal sealed record TupleLiteralNode(IReadOnlyList<Node> Items, int At) : Node(At);
internal sealed record ObjectLiteralNode(IReadOnlyList<(Node Key, Node Value)> Entries, int At) : Node(At);
internal sealed record IdentifierNode(string Name, int At) : Node(At);
internal sealed record MemberNode(Node Object, Node Property, bool Computed, int At) : Node(At);
internal sealed record SliceNode(Node? Start, Node? Stop, Node? Step, int At) : Node(At);
internal sealed record CallNode(Node Callee, IReadOnlyList<Node> Arguments, int At) : Node(At);
internal sealed record KeywordArgumentNode(IdentifierNode Key, Node Value, int At) : Node(At);
internal sealed record SpreadNode(Node Argument, int At) : Node(At);
internal sealed record KeywordSpreadNode(Node Argument, int At) : Node(At);
internal sealed record BinaryNode(string Operator, Node Left, Node Right, int At) : Node(At);
internal sealed record UnaryNode(string Operator, Node Argument, int At) : Node(At);
/// <summary><c>operand | filter</c>; <see cref="Filter"/> is an identifier or a call of one.</summary>
internal sealed record FilterNode(Node Operand, Node Filter, int At) : Node(At);
internal sealed record TestNode(Node Operand, bool Negate, string Test, int At) : Node(At);
/// <summary><c>value if test</c> without <c>else</c>: undefined when the test fails (also a for-loop filter).</summary>
internal sealed record SelectNode(Node Value, Node Test, int At) : Node(At);
internal sealed record TernaryNode(Node Condition, Node WhenTrue, Node WhenFalse, int At) : Node(At);
