using System.Globalization;

namespace FineTune.Cli.Progress;

/// <summary>Number formatting shared by the plain lines, the live display and the job summary.</summary>
internal static class ProgressFormat
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Loss(double loss) => loss.ToString("0.0000", Invariant);

    public static string LearningRate(double lr) => lr.ToString("0.00e+00", Invariant);

    public static string Rate(double tokensPerSecond) => tokensPerSecond.ToString("0", Invariant);

    public static string Number(double value, string format) => value.ToString(format, Invariant);

    public static string Duration(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}" : $"{t.Minutes:00}:{t.Seconds:00}";

    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1) { value /= 1024; unit++; }
        return value.ToString(unit == 0 ? "0" : "0.0", Invariant) + " " + units[unit];
    }
}
