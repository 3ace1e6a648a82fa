using System.Globalization;

namespace FineTune.Gguf.Format;

/// <summary>
/// One metadata value. Scalars hold the boxed CLR value of their type (<c>uint</c> for UInt32,
/// <c>string</c> for String, ...). Arrays hold a CLR array of the element type (<c>string[]</c>,
/// <c>int[]</c>, <c>float[]</c>, ...) or, for arrays of arrays, a <see cref="GgufValue"/>[].
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, object value, GgufValueType elementType)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    /// <summary>The value's type.</summary>
    public GgufValueType Type { get; }

    /// <summary>The element type when <see cref="Type"/> is <see cref="GgufValueType.Array"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The CLR value (see the class remarks).</summary>
    public object Value { get; }

    /// <summary>Creates a scalar value; <paramref name="value"/> must be the CLR type matching <paramref name="type"/>.</summary>
    public static GgufValue Scalar(GgufValueType type, object value)
    {
        if (type == GgufValueType.Array) throw new ArgumentException("Use Array(...) for arrays.", nameof(type));
        if (ClrType(type) != value.GetType())
            throw new ArgumentException($"A {type} value must be a {ClrType(type).Name}, not {value.GetType().Name}.", nameof(value));
        return new GgufValue(type, value, default);
    }

    /// <summary>Creates an array value; <paramref name="values"/> must be a CLR array of the element type.</summary>
    public static GgufValue Array(GgufValueType elementType, System.Array values)
    {
        var expected = elementType == GgufValueType.Array ? typeof(GgufValue) : ClrType(elementType);
        if (values.GetType().GetElementType() != expected)
            throw new ArgumentException($"An array of {elementType} must be a {expected.Name}[].", nameof(values));
        return new GgufValue(GgufValueType.Array, values, elementType);
    }

    /// <summary>A UTF-8 string value.</summary>
    public static GgufValue Of(string value) => Scalar(GgufValueType.String, value);
    /// <summary>A UInt32 value.</summary>
    public static GgufValue Of(uint value) => Scalar(GgufValueType.UInt32, value);
    /// <summary>An Int32 value.</summary>
    public static GgufValue Of(int value) => Scalar(GgufValueType.Int32, value);
    /// <summary>A Float32 value.</summary>
    public static GgufValue Of(float value) => Scalar(GgufValueType.Float32, value);
    /// <summary>A Bool value.</summary>
    public static GgufValue Of(bool value) => Scalar(GgufValueType.Bool, value);
    /// <summary>An array of strings.</summary>
    public static GgufValue Of(string[] values) => Array(GgufValueType.String, values);
    /// <summary>An array of Int32.</summary>
    public static GgufValue Of(int[] values) => Array(GgufValueType.Int32, values);
    /// <summary>An array of Float32.</summary>
    public static GgufValue Of(float[] values) => Array(GgufValueType.Float32, values);

    /// <summary>The value as an unsigned integer when it is any integer type (GGUF writers differ in which width they use).</summary>
    public ulong? AsUInt64() => Value switch
    {
        byte v => v, sbyte v when v >= 0 => (ulong)v, ushort v => v, short v when v >= 0 => (ulong)v,
        uint v => v, int v when v >= 0 => (ulong)v, ulong v => v, long v when v >= 0 => (ulong)v,
        _ => null,
    };

    /// <summary>The CLR type that holds a scalar of <paramref name="type"/>.</summary>
    public static Type ClrType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a scalar GGUF type."),
    };

    /// <summary>A short human-readable rendering (arrays are summarised).</summary>
    public override string ToString()
    {
        if (Type != GgufValueType.Array) return Format(Value);
        var arr = (System.Array)Value;
        var shown = Math.Min(arr.Length, 8);
        var items = new List<string>(shown);
        for (var i = 0; i < shown; i++) items.Add(Format(arr.GetValue(i)!));
        var more = arr.Length > shown ? $", ... ({arr.Length} items)" : "";
        return $"[{string.Join(", ", items)}{more}]";
    }

    private static string Format(object v) => v switch
    {
        string s => "\"" + (s.Length > 60 ? s[..60] + "..." : s).Replace("\n", "\\n") + "\"",
        bool b => b ? "true" : "false",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
