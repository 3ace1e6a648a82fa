using System.Globalization;

namespace FineTune.Data.Jinja;

/// <summary>
/// The filters chat templates use, chosen per value type as the reference does (<c>trim</c>,
/// <c>tojson</c>, <c>length</c>, <c>default</c>, <c>items</c>, <c>join</c>, <c>first</c>/<c>last</c>,
/// <c>selectattr</c>/<c>rejectattr</c>, <c>map(attribute=)</c>, <c>list</c>, <c>string</c>, <c>int</c>,
/// <c>upper</c>/<c>lower</c>, <c>capitalize</c>, <c>replace</c>, <c>safe</c>, <c>unique</c>, ...).
/// An unknown filter is FT1041 naming it and the value's type.
/// </summary>
internal static class Filters
{
    public static JinjaValue Apply(Interpreter it, JinjaValue operand, Node filterNode, Environment env)
    {
        if (filterNode is IdentifierNode id) return ApplyBare(it, operand, id.Name);
        var call = (CallNode)filterNode;
        var name = ((IdentifierNode)call.Callee).Name;
        var (args, kwargs) = it.EvaluateArguments(call.Arguments, env);
        return ApplyWithArguments(it, operand, name, args, kwargs, call);
    }

    private static JinjaRuntimeException Unknown(string name, JinjaValue operand) =>
        new(JinjaErrors.Unsupported, $"The filter '{name}' is not supported on a {operand.TypeName}");

    private static JinjaValue ApplyBare(Interpreter it, JinjaValue operand, string name)
    {
        switch (name)
        {
            case "safe": return operand;
            case "tojson": return it.Sized(new JinjaString(JinjaJson.Serialize(operand, new JsonOptions())));
            case "default" or "d": return operand is JinjaUndefined ? JinjaString.Empty : operand;
        }
        switch (operand)
        {
            case JinjaArray a:
                return name switch
                {
                    "list" => operand,
                    "first" => a.Items.Count > 0 ? a.Items[0] : JinjaUndefined.Instance,
                    "last" => a.Items.Count > 0 ? a.Items[^1] : JinjaUndefined.Instance,
                    "length" or "count" => new JinjaInt(a.Items.Count),
                    "reverse" => new JinjaArray(Enumerable.Reverse(a.Items).ToList()),
                    "sort" => new JinjaArray(Sort(a.Items, false, false, null)),
                    "join" => it.Sized(new JinjaString(string.Concat(a.Items.Select(Interpreter.JoinPart)))),
                    "string" => new JinjaString(JinjaJson.Serialize(a, new JsonOptions(), undefinedAsNull: false)),
                    "unique" => new JinjaArray(Unique(a.Items)),
                    _ => throw Unknown(name, operand),
                };
            case JinjaString s:
                return name switch
                {
                    "length" or "count" => new JinjaInt(s.Value.Length),
                    "upper" => new JinjaString(s.Value.ToUpperInvariant()),
                    "lower" => new JinjaString(s.Value.ToLowerInvariant()),
                    "title" => new JinjaString(Methods.Title(s.Value)),
                    "capitalize" => new JinjaString(Methods.Capitalize(s.Value)),
                    "trim" => new JinjaString(Methods.JsTrim(s.Value)),
                    "indent" => new JinjaString(Indent(s.Value, 4, false, false)),
                    "join" or "string" => s,
                    "int" => new JinjaInt(ParseInt(s.Value) ?? 0),
                    "float" => new JinjaFloat(ParseFloat(s.Value) ?? 0.0),
                    "list" => new JinjaArray(Slicing.CodePoints(s.Value).Select(c => (JinjaValue)new JinjaString(c)).ToList()),
                    "first" => s.Value.Length > 0 ? new JinjaString(Slicing.CodePoints(s.Value)[0]) : JinjaUndefined.Instance,
                    "last" => s.Value.Length > 0 ? new JinjaString(Slicing.CodePoints(s.Value)[^1]) : JinjaUndefined.Instance,
                    _ => throw Unknown(name, operand),
                };
            case JinjaInt or JinjaFloat:
                return name switch
                {
                    "abs" => operand is JinjaInt i ? new JinjaInt(Math.Abs(i.Value)) : new JinjaFloat(Math.Abs(((JinjaFloat)operand).Value)),
                    "int" => operand is JinjaInt ? operand : new JinjaInt((long)Math.Floor(((JinjaFloat)operand).Value)),
                    "float" => new JinjaFloat(operand is JinjaInt n ? n.Value : ((JinjaFloat)operand).Value),
                    "string" => new JinjaString(operand.Render()),
                    _ => throw Unknown(name, operand),
                };
            case JinjaObject o:
                return name switch
                {
                    "items" => Methods.Items(o),
                    "length" or "count" => new JinjaInt(o.Entries.Count),
                    "list" => new JinjaArray(o.Entries.Keys.Select(k => (JinjaValue)new JinjaString(k)).ToList()),
                    _ => Methods.ForObject(it, o, name) is JinjaFunction f ? f.Call([], null!) : throw Unknown(name, operand),
                };
            case JinjaBool b:
                return name switch
                {
                    "bool" => b,
                    "int" => new JinjaInt(b.Value ? 1 : 0),
                    "float" => new JinjaFloat(b.Value ? 1 : 0),
                    "string" => new JinjaString(b.Value ? "true" : "false"),
                    _ => throw Unknown(name, operand),
                };
        }
        throw Unknown(name, operand);
    }

    private static JinjaValue ApplyWithArguments(Interpreter it, JinjaValue operand, string name, List<JinjaValue> args,
        OrderedDictionary<string, JinjaValue> kwargs, CallNode call)
    {
        JinjaValue? Arg(int i, string key) => args.ElementAtOrDefault(i) ?? (kwargs.TryGetValue(key, out var v) ? v : null);

        switch (name)
        {
            case "tojson":
            {
                var indent = kwargs.GetValueOrDefault("indent") ?? args.ElementAtOrDefault(0) ?? JinjaNone.Instance;
                if (indent is not (JinjaInt or JinjaNone)) throw Interpreter.Error("tojson: indent must be a number");
                var ensureAscii = kwargs.GetValueOrDefault("ensure_ascii") ?? JinjaBool.False;
                var sortKeys = kwargs.GetValueOrDefault("sort_keys") ?? JinjaBool.False;
                if (ensureAscii is not JinjaBool ea || sortKeys is not JinjaBool sk) throw Interpreter.Error("tojson: ensure_ascii and sort_keys must be booleans");
                (string, string)? separators = null;
                if (kwargs.GetValueOrDefault("separators") is JinjaArray { Items: [JinjaString item, JinjaString key] }) separators = (item.Value, key.Value);
                else if (kwargs.GetValueOrDefault("separators") is { } other and not JinjaNone) throw Interpreter.Error("tojson: separators must be a tuple of two strings");
                var options = new JsonOptions(indent is JinjaInt n ? (int)n.Value : null, ea.Value, separators, sk.Value);
                return it.Sized(new JinjaString(JinjaJson.Serialize(operand, options)));
            }
            case "join":
            {
                var parts = operand switch
                {
                    JinjaString s => Slicing.CodePoints(s.Value),
                    JinjaArray a => a.Items.Select(Interpreter.JoinPart).ToList(),
                    _ => throw Unknown(name, operand),
                };
                var separator = Arg(0, "separator") ?? JinjaString.Empty;
                if (separator is not JinjaString sep) throw Interpreter.Error("join: the separator must be a string");
                if (kwargs.ContainsKey("attribute") && operand is JinjaArray withAttr)
                    parts = withAttr.Items.Select(x => Interpreter.JoinPart(Attribute(x, ((JinjaString)kwargs["attribute"]).Value))).ToList();
                return it.Sized(new JinjaString(string.Join(sep.Value, parts)));
            }
            case "int" or "float":
            {
                var fallback = Arg(0, "default") ?? (name == "int" ? new JinjaInt(0) : new JinjaFloat(0));
                return operand switch
                {
                    JinjaString s when name == "int" => ParseInt(s.Value) is { } i ? new JinjaInt(i) : fallback,
                    JinjaString s => ParseFloat(s.Value) is { } d ? new JinjaFloat(d) : fallback,
                    JinjaInt or JinjaFloat => operand,
                    JinjaBool b => name == "int" ? new JinjaInt(b.Value ? 1 : 0) : new JinjaFloat(b.Value ? 1 : 0),
                    _ => throw Unknown(name, operand),
                };
            }
            case "default" or "d":
            {
                var fallback = args.ElementAtOrDefault(0) ?? JinjaString.Empty;
                var boolean = Arg(1, "boolean") ?? JinjaBool.False;
                if (boolean is not JinjaBool flag) throw Interpreter.Error("default: the boolean flag must be a boolean");
                return operand is JinjaUndefined || (flag.Value && !operand.IsTruthy) ? fallback : operand;
            }
        }

        if (operand is JinjaArray arr)
        {
            switch (name)
            {
                case "sort":
                {
                    var reverse = Arg(0, "reverse") as JinjaBool ?? JinjaBool.False;
                    var caseSensitive = Arg(1, "case_sensitive") as JinjaBool ?? JinjaBool.False;
                    var attribute = Arg(2, "attribute") switch { JinjaString s => s.Value, JinjaInt i => i.Value.ToString(CultureInfo.InvariantCulture), _ => null };
                    return new JinjaArray(Sort(arr.Items, reverse.Value, caseSensitive.Value, attribute));
                }
                case "selectattr" or "rejectattr":
                {
                    var select = name == "selectattr";
                    if (arr.Items.Any(i => i is not (JinjaObject or JinjaNamespace))) throw Interpreter.Error($"{name} can only be applied to a list of mappings");
                    if (args.Any(a => a is not JinjaString)) throw Interpreter.Error($"The arguments of {name} must be strings");
                    var attr = ((JinjaString?)args.ElementAtOrDefault(0))?.Value ?? throw Interpreter.Error($"{name} needs an attribute name");
                    var test = ((JinjaString?)args.ElementAtOrDefault(1))?.Value;
                    var value = args.ElementAtOrDefault(2);
                    var kept = arr.Items.Where(item =>
                    {
                        var a = item is JinjaObject o ? o.Get(attr) : ((JinjaNamespace)item).Entries.GetValueOrDefault(attr);
                        var result = a is not null && (test is null ? a.IsTruthy : Tests.Run(test, a, value));
                        return select ? result : !result;
                    }).ToList();
                    return new JinjaArray(kept);
                }
                case "map":
                {
                    if (!kwargs.TryGetValue("attribute", out var attrValue))
                    {
                        if (args.ElementAtOrDefault(0) is JinjaString filterName)
                            return new JinjaArray(arr.Items.Select(x => ApplyBare(it, x, filterName.Value)).ToList());
                        throw new JinjaRuntimeException(JinjaErrors.Unsupported, "map() needs attribute= or a filter name");
                    }
                    if (attrValue is not JinjaString attr) throw Interpreter.Error("map: attribute must be a string");
                    var fallback = kwargs.GetValueOrDefault("default");
                    return new JinjaArray(arr.Items.Select(item =>
                    {
                        if (item is not (JinjaObject or JinjaNamespace)) throw Interpreter.Error("map(attribute=) needs a list of mappings");
                        var v = Attribute(item, attr.Value);
                        return v is JinjaUndefined ? fallback ?? JinjaUndefined.Instance : v;
                    }).ToList());
                }
            }
            throw Unknown(name, operand);
        }
        if (operand is JinjaString str)
        {
            switch (name)
            {
                case "indent":
                {
                    var width = Arg(0, "width") ?? new JinjaInt(4);
                    if (width is not JinjaInt w) throw Interpreter.Error("indent: width must be a number");
                    return new JinjaString(Indent(str.Value, (int)w.Value, (Arg(1, "first") ?? JinjaBool.False).IsTruthy, (Arg(2, "blank") ?? JinjaBool.False).IsTruthy));
                }
                case "replace":
                {
                    var all = new List<JinjaValue>(args);
                    if (kwargs.Count > 0) all.Add(new JinjaKeywordArguments(kwargs));
                    return it.Sized(Methods.Replace(str.Value, all));
                }
            }
            throw Unknown(name, operand);
        }
        if (operand is JinjaObject obj && Methods.ForObject(it, obj, name) is JinjaFunction method)
        {
            var all = new List<JinjaValue>(args);
            if (kwargs.Count > 0) all.Add(new JinjaKeywordArguments(kwargs));
            return method.Call(all, null!);
        }
        throw Unknown(name, operand);
    }

    /// <summary>A dotted attribute path (<c>function.name</c>, <c>items.0</c>) of a value, undefined when absent.</summary>
    private static JinjaValue Attribute(JinjaValue item, string path)
    {
        var value = item;
        foreach (var part in path.Split('.'))
        {
            Sandbox.CheckName(part);
            value = value switch
            {
                JinjaObject o => o.Get(part) ?? JinjaUndefined.Instance,
                JinjaNamespace n => n.Entries.GetValueOrDefault(part) ?? JinjaUndefined.Instance,
                JinjaArray a when int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Items.Count => a.Items[i],
                _ => JinjaUndefined.Instance,
            };
            if (value is JinjaUndefined) return value;
        }
        return value;
    }

    private static List<JinjaValue> Sort(List<JinjaValue> items, bool reverse, bool caseSensitive, string? attribute)
    {
        JinjaValue Key(JinjaValue v) => attribute is null ? v : Attribute(v, attribute);
        var sorted = items.Select((v, i) => (v, i)).ToList();
        // Stable, like JavaScript's Array.prototype.sort.
        sorted.Sort((a, b) =>
        {
            var c = Compare(Key(a.v), Key(b.v), caseSensitive);
            if (reverse) c = -c;
            return c != 0 ? c : a.i.CompareTo(b.i);
        });
        return sorted.Select(x => x.v).ToList();
    }

    private static int Compare(JinjaValue a, JinjaValue b, bool caseSensitive)
    {
        double? Num(JinjaValue v) => v switch { JinjaInt i => i.Value, JinjaFloat f => f.Value, JinjaBool x => x.Value ? 1 : 0, _ => null };
        if (a is JinjaNone && b is JinjaNone || a is JinjaUndefined && b is JinjaUndefined) return 0;
        if (Num(a) is { } x && Num(b) is { } y) return x.CompareTo(y);
        if (a is JinjaString sa && b is JinjaString sb)
        {
            var (l, r) = caseSensitive ? (sa.Value, sb.Value) : (sa.Value.ToLowerInvariant(), sb.Value.ToLowerInvariant());
            return string.CompareOrdinal(l, r) switch { < 0 => -1, > 0 => 1, _ => 0 };
        }
        throw Interpreter.Error($"Cannot compare a {a.TypeName} with a {b.TypeName}");
    }

    private static List<JinjaValue> Unique(List<JinjaValue> items)
    {
        var output = new List<JinjaValue>();
        foreach (var item in items)
            if (!output.Any(o => Equality.Strict(o, item))) output.Add(item);
        return output;
    }

    private static string Indent(string s, int width, bool first, bool blank)
    {
        var pad = new string(' ', Math.Max(0, width));
        var lines = s.Split('\n');
        for (var i = 0; i < lines.Length; i++)
            if (!((!first && i == 0) || (!blank && lines[i].Length == 0))) lines[i] = pad + lines[i];
        return string.Join("\n", lines);
    }

    /// <summary>JavaScript's <c>parseInt(s, 10)</c>: leading whitespace, a sign, then digits; null when none.</summary>
    private static long? ParseInt(string s)
    {
        var t = Methods.JsTrimStart(s);
        var i = 0;
        var negative = false;
        if (i < t.Length && t[i] is '+' or '-') negative = t[i++] == '-';
        var start = i;
        while (i < t.Length && char.IsAsciiDigit(t[i])) i++;
        if (i == start) return null;
        return long.TryParse(t[start..i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? (negative ? -v : v) : null;
    }

    /// <summary>JavaScript's <c>parseFloat</c> for plain decimal numbers.</summary>
    private static double? ParseFloat(string s)
    {
        var t = Methods.JsTrimStart(s);
        var m = System.Text.RegularExpressions.Regex.Match(t, @"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?");
        return m.Success ? double.Parse(m.Value, CultureInfo.InvariantCulture) : null;
    }
}
