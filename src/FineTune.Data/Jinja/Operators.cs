using System.Globalization;

namespace FineTune.Data.Jinja;

internal sealed partial class Interpreter
{
    private JinjaValue EvaluateBinary(BinaryNode node, Environment env)
    {
        var left = Evaluate(node.Left, env);
        switch (node.Operator)
        {
            case "and": return left.IsTruthy ? Evaluate(node.Right, env) : left;
            case "or": return left.IsTruthy ? left : Evaluate(node.Right, env);
        }
        var right = Evaluate(node.Right, env);
        var op = node.Operator;
        switch (op)
        {
            case "==": return JinjaBool.Of(Equality.Loose(left, right));
            case "!=": return JinjaBool.Of(!Equality.Loose(left, right));
        }

        if (left is JinjaUndefined || right is JinjaUndefined)
        {
            if (right is JinjaUndefined && op is "in" or "not in") return JinjaBool.Of(op == "not in");
            throw Error($"Cannot apply '{op}' to an undefined value");
        }
        if (left is JinjaNone || right is JinjaNone) throw Error($"Cannot apply '{op}' to none");
        if (op == "~") return Sized(new JinjaString(Concat(left) + Concat(right)));

        if (op == "**" && IsNumeric(left) && IsNumeric(right))
        {
            var (a, b) = (Number(left), Number(right));
            if (a == 0 && b < 0) throw Error("0.0 cannot be raised to a negative power");
            var r = Math.Pow(a, b);
            if (!double.IsFinite(r)) throw Error("Exponentiation result is not a finite real number");
            return left is JinjaFloat || right is JinjaFloat || b < 0 ? new JinjaFloat(r) : Integer(r);
        }
        if (left is JinjaInt or JinjaFloat && right is JinjaInt or JinjaFloat)
        {
            var isFloat = left is JinjaFloat || right is JinjaFloat;
            if (!isFloat && op is "+" or "-" or "*" or "%" or "//")
            {
                long a = ((JinjaInt)left).Value, b = ((JinjaInt)right).Value;
                switch (op)
                {
                    case "+": return new JinjaInt(a + b);
                    case "-": return new JinjaInt(a - b);
                    case "*": return new JinjaInt(a * b);
                    case "//": return b == 0 ? throw Error("Division by zero") : new JinjaInt((long)Math.Floor((double)a / b));
                    case "%": return b == 0 ? throw Error("Division by zero") : new JinjaInt(a % b);
                }
            }
            double x = Number(left), y = Number(right);
            switch (op)
            {
                case "+": return new JinjaFloat(x + y);
                case "-": return new JinjaFloat(x - y);
                case "*": return new JinjaFloat(x * y);
                case "/": return new JinjaFloat(x / y);
                case "//": return new JinjaFloat(Math.Floor(x / y));
                case "%": return new JinjaFloat(x % y);
                case "<": return JinjaBool.Of(x < y);
                case ">": return JinjaBool.Of(x > y);
                case "<=": return JinjaBool.Of(x <= y);
                case ">=": return JinjaBool.Of(x >= y);
            }
        }
        else if (left is JinjaArray la && right is JinjaArray ra)
        {
            if (op == "+") return Sized(new JinjaArray([.. la.Items, .. ra.Items]));
        }
        else if (right is JinjaArray list)
        {
            if (op is "in" or "not in")
            {
                var member = list.Items.Any(x => Equality.Strict(x, left));
                return JinjaBool.Of(op == "in" ? member : !member);
            }
        }

        if ((left is JinjaString || right is JinjaString) && op == "+")
            return Sized(new JinjaString(Concat(left) + Concat(right)));
        if (left is JinjaString ls && right is JinjaString rs && op is "in" or "not in")
        {
            var contains = rs.Value.Contains(ls.Value, StringComparison.Ordinal);
            return JinjaBool.Of(op == "in" ? contains : !contains);
        }
        if (left is JinjaString key && right is JinjaObject obj && op is "in" or "not in")
        {
            var has = obj.Entries.ContainsKey(key.Value);
            return JinjaBool.Of(op == "in" ? has : !has);
        }
        throw Error($"Unknown operator '{op}' between a {left.TypeName} and a {right.TypeName}");
    }

    private static bool IsNumeric(JinjaValue v) => v is JinjaInt or JinjaFloat or JinjaBool;

    private static double Number(JinjaValue v) => v switch
    {
        JinjaInt i => i.Value,
        JinjaFloat f => f.Value,
        JinjaBool b => b.Value ? 1 : 0,
        _ => double.NaN,
    };

    private static JinjaValue Integer(double d) => Math.Abs(d) < 9.2e18 ? new JinjaInt((long)d) : new JinjaFloat(d);

    /// <summary>A value as JavaScript's <c>toString</c> writes it inside <c>+</c> and <c>~</c> (floats without the <c>.0</c>).</summary>
    internal static string Concat(JinjaValue v) => v switch
    {
        JinjaString s => s.Value,
        JinjaFloat f => JsNumber.Format(f.Value),
        JinjaInt i => i.Value.ToString(CultureInfo.InvariantCulture),
        JinjaBool b => b.Value ? "true" : "false",
        JinjaArray a => string.Join(",", a.Items.Select(JoinPart)),
        JinjaObject or JinjaNamespace => "[object Map]",
        _ => v.Render(),
    };

    /// <summary>An item as JavaScript's <c>Array.join</c> writes it (none and undefined as nothing).</summary>
    internal static string JoinPart(JinjaValue v) => v switch
    {
        JinjaNone or JinjaUndefined => "",
        _ => Concat(v),
    };
}

/// <summary>The reference's equality: <c>==</c> is JavaScript's loose equality, <c>in</c> its strict one.</summary>
internal static class Equality
{
    public static bool Loose(JinjaValue a, JinjaValue b)
    {
        if (a is JinjaNone or JinjaUndefined || b is JinjaNone or JinjaUndefined) return a is JinjaNone or JinjaUndefined && b is JinjaNone or JinjaUndefined;
        if (a is JinjaString sa && b is JinjaString sb) return string.Equals(sa.Value, sb.Value, StringComparison.Ordinal);
        if (Primitive(a) && Primitive(b)) return ToNumber(a) == ToNumber(b);
        return ReferenceEquals(a, b);
    }

    public static bool Strict(JinjaValue a, JinjaValue b) => (a, b) switch
    {
        (JinjaString x, JinjaString y) => string.Equals(x.Value, y.Value, StringComparison.Ordinal),
        (JinjaInt or JinjaFloat, JinjaInt or JinjaFloat) => ToNumber(a) == ToNumber(b),
        (JinjaBool x, JinjaBool y) => x.Value == y.Value,
        (JinjaNone, JinjaNone) or (JinjaUndefined, JinjaUndefined) => true,
        _ => ReferenceEquals(a, b),
    };

    private static bool Primitive(JinjaValue v) => v is JinjaString or JinjaInt or JinjaFloat or JinjaBool;

    private static double ToNumber(JinjaValue v) => v switch
    {
        JinjaInt i => i.Value,
        JinjaFloat f => f.Value,
        JinjaBool b => b.Value ? 1 : 0,
        JinjaString s => s.Value.Trim().Length == 0 ? 0
            : double.TryParse(s.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.NaN,
        _ => double.NaN,
    };
}

/// <summary>Python-style slices.</summary>
internal static class Slicing
{
    public static List<T> Slice<T>(IReadOnlyList<T> items, long? start, long? stop, long step)
    {
        if (step == 0) throw Interpreter.Error("Slice step cannot be zero");
        long n = items.Count, s, e;
        if (step > 0)
        {
            s = start is { } a ? (a < 0 ? Math.Max(n + a, 0) : Math.Min(a, n)) : 0;
            e = stop is { } b ? (b < 0 ? Math.Max(n + b, 0) : Math.Min(b, n)) : n;
        }
        else
        {
            s = start is { } a ? (a < 0 ? Math.Max(n + a, -1) : Math.Min(a, n - 1)) : n - 1;
            e = stop is { } b ? (b < -1 ? Math.Max(n + b, -1) : Math.Min(b, n - 1)) : -1;
        }
        var result = new List<T>();
        for (var i = s; step > 0 ? i < e : i > e; i += step) result.Add(items[(int)i]);
        return result;
    }

    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return list;
    }
}

/// <summary>What the sandbox refuses whatever the value.</summary>
internal static class Sandbox
{
    public static void CheckName(string name)
    {
        if (name.StartsWith("__", StringComparison.Ordinal))
            throw new JinjaRuntimeException(JinjaErrors.Forbidden, $"Access to the attribute '{name}' is refused: chat templates run in a sandbox without Python internals");
    }
}
