using System.Globalization;
using System.Text.Json.Nodes;

namespace FineTune.Bench.KernelBench;

/// <summary>Prints one JSON object per line and keeps them for the closing table.</summary>
internal sealed class JsonLines
{
    public List<JsonObject> Lines { get; } = [];

    public void Emit(JsonObject line)
    {
        Lines.Add(line);
        Console.WriteLine(line.ToJsonString());
    }

    public static double Round(double value, int digits = 4) =>
        double.IsFinite(value) ? Math.Round(value, digits, MidpointRounding.ToEven) : value;

    public static string Fmt(double value, string format = "0.###") => value.ToString(format, CultureInfo.InvariantCulture);
}
