namespace FineTune.Cli.Reports;

/// <summary>"Nice" axis ticks: steps of 1, 2 or 5 times a power of ten covering a data range.</summary>
public static class AxisTicks
{
    /// <summary>The tick step and the ticks from a multiple of it at or below <paramref name="min"/> to one at or above <paramref name="max"/>.</summary>
    public static (double Step, IReadOnlyList<double> Ticks) For(double min, double max, int targetCount = 5)
    {
        if (!(max > min))
        {
            // A flat series still needs a visible range around its value.
            var pad = min == 0 ? 1 : Math.Abs(min) * 0.1;
            (min, max) = (min - pad, max + pad);
        }
        var rough = (max - min) / Math.Max(1, targetCount);
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= rough);
        var first = Math.Floor(min / step) * step;
        var last = Math.Ceiling(max / step) * step;
        var ticks = new List<double>();
        for (var i = 0; first + i * step <= last + step * 1e-9; i++)
            ticks.Add(Math.Round(first + i * step, 12));
        return (step, ticks);
    }
}
