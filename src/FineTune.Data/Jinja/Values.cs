using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FineTune.Data.Jinja;

/// <summary>
/// A runtime value. The types and their behaviour (truthiness, how each prints, which methods and
/// filters apply) follow @huggingface/jinja, the renderer the project's goldens come from.
/// </summary>
public abstract class JinjaValue
{
    internal abstract string TypeName { get; }

    /// <summary>Python-style truthiness.</summary>
    internal virtual bool IsTruthy => true;

    /// <summary>The text <c>{{ value }}</c> writes.</summary>
    internal abstract string Render();

    /// <summary>Converts a .NET value (string, bool, number, null, list, dictionary, JSON node) into a template value.</summary>
    public static JinjaValue From(object? value) => value switch
    {
        null => JinjaNone.Instance,
        JinjaValue v => v,
        string s => new JinjaString(s),
        bool b => JinjaBool.Of(b),
        int i => new JinjaInt(i),
        long l => new JinjaInt(l),
        double d => new JinjaFloat(d),
        float f => new JinjaFloat(f),
        decimal m => new JinjaFloat((double)m),
        JsonNode n => FromJson(n),
        JsonElement e => FromJson(JsonNode.Parse(e.GetRawText())),
        IReadOnlyDictionary<string, object?> d => new JinjaObject(d.ToDictionary(kv => kv.Key, kv => From(kv.Value))),
        IDictionary<string, object?> d => new JinjaObject(d.ToDictionary(kv => kv.Key, kv => From(kv.Value))),
        IDictionary<string, string> d => new JinjaObject(d.ToDictionary(kv => kv.Key, kv => From(kv.Value))),
        System.Collections.IEnumerable e => new JinjaArray(e.Cast<object?>().Select(From).ToList()),
        _ => throw new ArgumentException($"Cannot pass a {value.GetType().Name} to a template."),
    };

    // JSON has one number type; like JavaScript, an integral literal is an integer and anything else a float.
    private static JinjaValue Number(string literal) =>
        literal.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
            ? new JinjaInt(l)
            : new JinjaFloat(double.Parse(literal, CultureInfo.InvariantCulture));

    private static JinjaValue FromJson(JsonNode? node) => node switch
    {
        null => JinjaNone.Instance,
        JsonObject o => new JinjaObject(o.Select(kv => KeyValuePair.Create(kv.Key, FromJson(kv.Value)))),
        JsonArray a => new JinjaArray(a.Select(FromJson).ToList()),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => new JinjaString(v.GetValue<string>()),
            JsonValueKind.True => JinjaBool.True,
            JsonValueKind.False => JinjaBool.False,
            JsonValueKind.Number => Number(v.ToJsonString()),
            _ => JinjaNone.Instance,
        },
        _ => JinjaNone.Instance,
    };
}

internal sealed class JinjaUndefined : JinjaValue
{
    public static readonly JinjaUndefined Instance = new();
    internal override string TypeName => "undefined";
    internal override bool IsTruthy => false;
    internal override string Render() => "";
}

internal sealed class JinjaNone : JinjaValue
{
    public static readonly JinjaNone Instance = new();
    internal override string TypeName => "none";
    internal override bool IsTruthy => false;
    internal override string Render() => "";
}

internal sealed class JinjaBool : JinjaValue
{
    public static readonly JinjaBool True = new(true), False = new(false);
    private JinjaBool(bool value) => Value = value;
    public static JinjaBool Of(bool b) => b ? True : False;
    public bool Value { get; }
    internal override string TypeName => "boolean";
    internal override bool IsTruthy => Value;
    internal override string Render() => Value ? "true" : "false";
}

internal sealed class JinjaInt(long value) : JinjaValue
{
    public long Value { get; } = value;
    internal override string TypeName => "integer";
    internal override bool IsTruthy => Value != 0;
    internal override string Render() => Value.ToString(CultureInfo.InvariantCulture);
}

internal sealed class JinjaFloat(double value) : JinjaValue
{
    public double Value { get; } = value;
    internal override string TypeName => "float";
    internal override bool IsTruthy => Value != 0 && !double.IsNaN(Value);
    internal override string Render()
    {
        if (Value == 0 && double.IsNegative(Value)) return "-0.0";
        return Value % 1 == 0 && !double.IsInfinity(Value) ? Value.ToString("F1", CultureInfo.InvariantCulture) : JsNumber.Format(Value);
    }
}

internal sealed class JinjaString(string value) : JinjaValue
{
    public static readonly JinjaString Empty = new("");
    public string Value { get; } = value;
    internal override string TypeName => "string";
    internal override bool IsTruthy => Value.Length > 0;
    internal override string Render() => Value;
}

/// <summary>A list; <see cref="IsTuple"/> for tuple literals (they behave the same).</summary>
internal sealed class JinjaArray(List<JinjaValue> items, bool isTuple = false) : JinjaValue
{
    public List<JinjaValue> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;
    internal override string TypeName => IsTuple ? "tuple" : "list";
    internal override bool IsTruthy => Items.Count > 0;
    internal override string Render() => JinjaJson.Serialize(this, new JsonOptions(), undefinedAsNull: false);
}

/// <summary>A mapping with insertion order (message dictionaries, object literals, keyword arguments).</summary>
internal class JinjaObject : JinjaValue
{
    public JinjaObject(IEnumerable<KeyValuePair<string, JinjaValue>> entries)
    {
        Entries = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        foreach (var (k, v) in entries) Entries[k] = v;
    }

    public OrderedDictionary<string, JinjaValue> Entries { get; }
    internal override string TypeName => "dict";
    internal override bool IsTruthy => Entries.Count > 0;
    internal override string Render() => JinjaJson.Serialize(this, new JsonOptions(), undefinedAsNull: false);
    public JinjaValue? Get(string key) => Entries.TryGetValue(key, out var v) ? v : null;
}

/// <summary>The keyword arguments of a call, passed as the last argument.</summary>
internal sealed class JinjaKeywordArguments(IEnumerable<KeyValuePair<string, JinjaValue>> entries) : JinjaObject(entries)
{
    internal override string TypeName => "keyword arguments";
}

/// <summary>What <c>namespace()</c> returns: attributes that <c>{% set ns.x = ... %}</c> may change inside loops.</summary>
internal sealed class JinjaNamespace(OrderedDictionary<string, JinjaValue> entries) : JinjaValue
{
    public OrderedDictionary<string, JinjaValue> Entries { get; } = entries;
    internal override string TypeName => "namespace";
    internal override string Render() => JinjaJson.Serialize(this, new JsonOptions(), undefinedAsNull: false);
}

/// <summary>A callable: a macro, a global like <c>range</c>, or a bound method like <c>'a'.upper</c>.</summary>
internal sealed class JinjaFunction(string name, Func<List<JinjaValue>, Environment, JinjaValue> call) : JinjaValue
{
    public string Name { get; } = name;
    public Func<List<JinjaValue>, Environment, JinjaValue> Call { get; } = call;
    internal override string TypeName => "function";
    internal override string Render() => $"<function {Name}>";
}

/// <summary>JavaScript's Number-to-string, which the reference uses for floats and JSON numbers.</summary>
internal static class JsNumber
{
    public static string Format(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsPositiveInfinity(d)) return "Infinity";
        if (double.IsNegativeInfinity(d)) return "-Infinity";
        if (d == 0) return "0";
        var abs = Math.Abs(d);
        if (abs >= 1e21 || abs < 1e-6)
        {
            var parts = d.ToString("R", CultureInfo.InvariantCulture).Split('E');
            var exponent = int.Parse(parts[1], CultureInfo.InvariantCulture);
            return parts[0] + (exponent < 0 ? "e-" : "e+") + Math.Abs(exponent).ToString(CultureInfo.InvariantCulture);
        }
        return d.ToString("R", CultureInfo.InvariantCulture);
    }
}
