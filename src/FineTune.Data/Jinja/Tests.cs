namespace FineTune.Data.Jinja;

/// <summary>The <c>is</c> tests (<c>defined</c>, <c>none</c>, <c>string</c>, <c>mapping</c>, <c>iterable</c>, ...).</summary>
internal static class Tests
{
    public static readonly HashSet<string> Names =
        ["boolean", "callable", "odd", "even", "false", "true", "none", "string", "number", "integer", "float", "iterable", "mapping", "sequence", "lower", "upper", "defined", "undefined"];

    public static bool Run(string name, JinjaValue v) => name switch
    {
        "boolean" => v is JinjaBool,
        "callable" => v is JinjaFunction,
        "odd" => v is JinjaInt oi ? oi.Value % 2 != 0 : throw Interpreter.Error($"Cannot test whether a {v.TypeName} is odd"),
        "even" => v is JinjaInt ei ? ei.Value % 2 == 0 : throw Interpreter.Error($"Cannot test whether a {v.TypeName} is even"),
        "false" => v is JinjaBool { Value: false },
        "true" => v is JinjaBool { Value: true },
        "none" => v is JinjaNone,
        "string" => v is JinjaString,
        "number" => v is JinjaInt or JinjaFloat,
        "integer" => v is JinjaInt,
        "float" => v is JinjaFloat,
        "iterable" => v is JinjaArray or JinjaString,
        "mapping" => v is JinjaObject,
        "sequence" => v is JinjaArray or JinjaObject or JinjaString,
        "lower" => v is JinjaString ls && ls.Value == ls.Value.ToLowerInvariant(),
        "upper" => v is JinjaString us && us.Value == us.Value.ToUpperInvariant(),
        "defined" => v is not JinjaUndefined,
        "undefined" => v is JinjaUndefined,
        _ => throw new JinjaRuntimeException(JinjaErrors.Unsupported, $"Unknown test 'is {name}'"),
    };

    /// <summary>Tests that take a second value, as <c>selectattr('x', 'equalto', y)</c> uses them.</summary>
    public static bool Run(string name, JinjaValue v, JinjaValue? argument) => name switch
    {
        "equalto" or "eq" or "==" => argument is not null && Equality.Strict(v, argument),
        "ne" or "!=" => argument is null || !Equality.Strict(v, argument),
        _ => Run(name, v),
    };
}
