using System.Text;
using FineTune.Core.IO;

namespace FineTune.Ollama.Modelfiles;

/// <summary>
/// Writes a Modelfile that both <c>ollama create -f Modelfile</c> and <see cref="ModelfileParser"/> read
/// back value for value. Every value is validated (parameter names and types) and quoted by
/// <see cref="ModelfileText.Quote"/>, which refuses the rare texts the format cannot carry instead of
/// writing a file that Ollama would read differently.
/// </summary>
public static class ModelfileWriter
{
    /// <summary>The Modelfile text for <paramref name="spec"/> (LF line endings, no byte order mark).</summary>
    public static string Write(ModelfileSpec spec)
    {
        var sb = new StringBuilder();
        sb.Append("# Written by finetune. Create the model with: ollama create <name> -f Modelfile\n");
        Line(sb, "FROM", spec.From);
        if (spec.Adapter is not null) Line(sb, "ADAPTER", spec.Adapter);
        if (spec.Template is not null) Line(sb, "TEMPLATE", spec.Template);

        var stops = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stop in spec.Stops.Concat(spec.Parameters.Where(p => p.Key == "stop").Select(p => p.Value)))
        {
            OllamaParameters.Convert("stop", stop);
            if (stops.Add(stop)) Line(sb, "PARAMETER stop", stop, "PARAMETER stop");
        }
        foreach (var (name, value) in spec.Parameters.Where(p => p.Key != "stop"))
        {
            OllamaParameters.Convert(name, value);
            Line(sb, "PARAMETER " + name, value);
        }

        if (spec.System is not null) Line(sb, "SYSTEM", spec.System);
        if (spec.License is not null) Line(sb, "LICENSE", spec.License);
        return sb.ToString();
    }

    /// <summary>Writes the Modelfile atomically to <paramref name="path"/>.</summary>
    public static void WriteFile(string path, ModelfileSpec spec) => AtomicFile.WriteAllText(path, Write(spec));

    /// <summary>
    /// How a Modelfile in <paramref name="modelfileDirectory"/> refers to <paramref name="path"/>: a relative
    /// path is taken as relative to the Modelfile's folder already; an absolute one is made relative to it
    /// when both are on the same drive. The result uses forward slashes and starts with <c>./</c> or <c>../</c>
    /// (Ollama resolves such paths against the Modelfile's folder).
    /// </summary>
    public static string Reference(string path, string modelfileDirectory)
    {
        var relative = Path.IsPathRooted(path) ? Path.GetRelativePath(Path.GetFullPath(modelfileDirectory), path) : path;
        if (Path.IsPathRooted(relative)) return relative.Replace('\\', '/');
        relative = relative.Replace('\\', '/');
        return relative.StartsWith("./", StringComparison.Ordinal) || relative.StartsWith("../", StringComparison.Ordinal) ? relative : "./" + relative;
    }

    private static void Line(StringBuilder sb, string command, string value, string? what = null) =>
        sb.Append(command).Append(' ').Append(ModelfileText.Quote(value, what ?? command)).Append('\n');
}
