namespace FineTune.Data.Jinja;

/// <summary>A variable scope; loops and macros open child scopes, <c>if</c> blocks do not (as in Jinja).</summary>
internal sealed class Environment(Environment? parent = null)
{
    private readonly Dictionary<string, JinjaValue> _variables = new(StringComparer.Ordinal);

    public Environment? Parent { get; } = parent;

    public void Set(string name, JinjaValue value) => _variables[name] = value;

    public JinjaValue Lookup(string name)
    {
        for (var e = this; e is not null; e = e.Parent)
            if (e._variables.TryGetValue(name, out var v)) return v;
        return JinjaUndefined.Instance;
    }
}

/// <summary>An error raised while rendering; the interpreter adds the position of the node that failed.</summary>
internal sealed class JinjaRuntimeException(string code, string message, int offset = -1) : Exception(message)
{
    public string Code { get; } = code;
    public int Offset { get; set; } = offset;
}
