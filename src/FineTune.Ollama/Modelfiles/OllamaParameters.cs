using System.Globalization;
using FineTune.Core.Diagnostics;

namespace FineTune.Ollama.Modelfiles;

/// <summary>The JSON type Ollama gives a PARAMETER (its <c>api.Options</c> field type).</summary>
public enum OllamaParameterType
{
    /// <summary>A 64-bit integer (Go <c>strconv.ParseInt</c>, base 10).</summary>
    Integer,
    /// <summary>A float (Go <c>strconv.ParseFloat</c>).</summary>
    Float,
    /// <summary>A boolean (Go <c>strconv.ParseBool</c>).</summary>
    Boolean,
    /// <summary>A list of strings; each PARAMETER line adds one (only <c>stop</c>).</summary>
    StringList,
}

/// <summary>
/// The parameters Ollama accepts in a Modelfile (the JSON names of <c>api.Options</c> and <c>api.Runner</c>)
/// and how their text values are typed, so a bad value fails here rather than on the server.
/// </summary>
public static class OllamaParameters
{
    private static readonly Dictionary<string, OllamaParameterType> Known = new(StringComparer.Ordinal)
    {
        ["num_keep"] = OllamaParameterType.Integer,
        ["seed"] = OllamaParameterType.Integer,
        ["num_predict"] = OllamaParameterType.Integer,
        ["top_k"] = OllamaParameterType.Integer,
        ["top_p"] = OllamaParameterType.Float,
        ["min_p"] = OllamaParameterType.Float,
        ["typical_p"] = OllamaParameterType.Float,
        ["repeat_last_n"] = OllamaParameterType.Integer,
        ["temperature"] = OllamaParameterType.Float,
        ["repeat_penalty"] = OllamaParameterType.Float,
        ["presence_penalty"] = OllamaParameterType.Float,
        ["frequency_penalty"] = OllamaParameterType.Float,
        ["stop"] = OllamaParameterType.StringList,
        ["num_ctx"] = OllamaParameterType.Integer,
        ["num_batch"] = OllamaParameterType.Integer,
        ["num_gpu"] = OllamaParameterType.Integer,
        ["main_gpu"] = OllamaParameterType.Integer,
        ["use_mmap"] = OllamaParameterType.Boolean,
        ["num_thread"] = OllamaParameterType.Integer,
        ["draft_num_predict"] = OllamaParameterType.Integer,
    };

    /// <summary>Every parameter name Ollama accepts, sorted.</summary>
    public static IEnumerable<string> Names => Known.Keys.Order(StringComparer.Ordinal);

    /// <summary>The type of <paramref name="name"/>, or throws FT5003 for an unknown name.</summary>
    public static OllamaParameterType TypeOf(string name, string? file = null, int line = 0) =>
        Known.TryGetValue(name, out var type)
            ? type
            : throw new FineTuneException(OllamaErrorCodes.InvalidParameter,
                $"unknown parameter '{name}'; Ollama accepts {string.Join(", ", Names)}", file, line);

    /// <summary>
    /// The value as Ollama types it: <see cref="long"/>, <see cref="double"/>, <see cref="bool"/> or
    /// <see cref="string"/> (one element of a list). Throws FT5003 when the text does not parse.
    /// </summary>
    public static object Convert(string name, string value, string? file = null, int line = 0)
    {
        var type = TypeOf(name, file, line);
        object? result = type switch
        {
            OllamaParameterType.Integer => long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? l : null,
            OllamaParameterType.Float => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d : null,
            OllamaParameterType.Boolean => ParseGoBool(value),
            _ => value.Length > 0 ? value : null,
        };
        return result ?? throw new FineTuneException(OllamaErrorCodes.InvalidParameter,
            type == OllamaParameterType.StringList
                ? $"parameter '{name}' needs a non-empty value"
                : $"parameter '{name}' needs {Article(type)} value, not '{value}'", file, line);
    }

    private static string Article(OllamaParameterType type) => type switch
    {
        OllamaParameterType.Integer => "an integer",
        OllamaParameterType.Float => "a number",
        _ => "a true/false",
    };

    // Go's strconv.ParseBool spellings.
    private static object? ParseGoBool(string value) => value switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };
}
