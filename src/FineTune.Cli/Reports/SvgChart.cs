using System.Globalization;
using System.Net;
using System.Text;

namespace FineTune.Cli.Reports;

/// <summary>A named series of (x, y) points drawn in one colour.</summary>
/// <param name="Name">Legend text.</param>
/// <param name="Color">CSS colour, e.g. <c>#d9480f</c>.</param>
/// <param name="Points">Points in drawing order.</param>
/// <param name="Markers">Draw a dot on each point (for sparse series such as evaluations).</param>
public sealed record ChartSeries(string Name, string Color, IReadOnlyList<(double X, double Y)> Points, bool Markers = false);

/// <summary>
/// Small inline-SVG charts for the report: a line chart and a bar chart with labelled axes and
/// gridlines. Inline SVG needs no script or font to render, so the report opens offline.
/// </summary>
public static class SvgChart
{
    private const int Width = 760, Height = 320, Left = 64, Right = 16, Top = 16, Bottom = 48;
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>A line chart of <paramref name="series"/> with a legend; an <c>id</c> lets tests and links find it.</summary>
    public static string Lines(string id, string title, string xLabel, string yLabel, IReadOnlyList<ChartSeries> series)
    {
        var all = series.SelectMany(s => s.Points).ToList();
        var sb = Open(id, title);
        if (all.Count == 0) return Empty(sb);
        var (xStep, xTicks) = AxisTicks.For(all.Min(p => p.X), all.Max(p => p.X), 8);
        var (yStep, yTicks) = AxisTicks.For(all.Min(p => p.Y), all.Max(p => p.Y), 5);
        var x = Scale(xTicks[0], xTicks[^1], Left, Width - Right);
        var y = Scale(yTicks[0], yTicks[^1], Height - Bottom, Top);
        Axes(sb, xTicks, TickFormat(xStep), yTicks, TickFormat(yStep), x, y, xLabel, yLabel);
        foreach (var s in series)
        {
            var color = WebUtility.HtmlEncode(s.Color);
            if (s.Points.Count > 1)
            {
                sb.Append($"<polyline class=\"series\" data-series=\"{WebUtility.HtmlEncode(s.Name)}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\" stroke-linejoin=\"round\" points=\"");
                sb.AppendJoin(' ', s.Points.Select(p => $"{F(x(p.X))},{F(y(p.Y))}"));
                sb.Append("\"/>");
            }
            if (s.Markers || s.Points.Count == 1)
                foreach (var p in s.Points)
                    sb.Append($"<circle cx=\"{F(x(p.X))}\" cy=\"{F(y(p.Y))}\" r=\"4\" fill=\"{color}\"><title>{WebUtility.HtmlEncode(s.Name)} {F(p.Y, "0.####")} at {F(p.X, "0.##")}</title></circle>");
        }
        // Legend, top right.
        var lx = Width - Right - 150;
        for (var i = 0; i < series.Count; i++)
        {
            var ly = Top + 14 + i * 18;
            sb.Append($"<line x1=\"{lx}\" y1=\"{ly - 4}\" x2=\"{lx + 22}\" y2=\"{ly - 4}\" stroke=\"{WebUtility.HtmlEncode(series[i].Color)}\" stroke-width=\"3\"/>");
            sb.Append($"<text x=\"{lx + 28}\" y=\"{ly}\" class=\"legend\">{WebUtility.HtmlEncode(series[i].Name)}</text>");
        }
        return sb.Append("</svg>").ToString();
    }

    /// <summary>A bar chart of counts per bin, labelled by each bin's upper bound.</summary>
    public static string Bars(string id, string title, string xLabel, string yLabel, string color, IReadOnlyList<(string Label, double Value)> bars)
    {
        var sb = Open(id, title);
        if (bars.Count == 0) return Empty(sb);
        var (_, yTicks) = AxisTicks.For(0, Math.Max(1, bars.Max(b => b.Value)), 5);
        var y = Scale(0, yTicks[^1], Height - Bottom, Top);
        var slot = (double)(Width - Left - Right) / bars.Count;
        foreach (var t in yTicks)
        {
            sb.Append($"<line class=\"grid\" x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{F(y(t))}\" y2=\"{F(y(t))}\"/>");
            sb.Append($"<text class=\"tick\" x=\"{Left - 6}\" y=\"{F(y(t) + 4)}\" text-anchor=\"end\">{F(t, "0.##")}</text>");
        }
        var labelEvery = Math.Max(1, (int)Math.Ceiling(bars.Count / 16.0));
        for (var i = 0; i < bars.Count; i++)
        {
            var (label, value) = bars[i];
            var bx = Left + i * slot + slot * 0.1;
            sb.Append($"<rect x=\"{F(bx)}\" y=\"{F(y(value))}\" width=\"{F(slot * 0.8)}\" height=\"{F(y(0) - y(value))}\" fill=\"{WebUtility.HtmlEncode(color)}\"><title>{WebUtility.HtmlEncode(label)}: {F(value, "0")}</title></rect>");
            if (i % labelEvery == 0)
                sb.Append($"<text class=\"tick\" x=\"{F(bx + slot * 0.4)}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\">{WebUtility.HtmlEncode(label)}</text>");
        }
        AxisLines(sb, xLabel, yLabel);
        return sb.Append("</svg>").ToString();
    }

    private static StringBuilder Open(string id, string title) =>
        new StringBuilder().Append($"<svg id=\"{WebUtility.HtmlEncode(id)}\" class=\"chart\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" role=\"img\" aria-label=\"{WebUtility.HtmlEncode(title)}\"><title>{WebUtility.HtmlEncode(title)}</title>");

    private static string Empty(StringBuilder sb) =>
        sb.Append($"<text x=\"{Width / 2}\" y=\"{Height / 2}\" text-anchor=\"middle\" class=\"legend\">no data</text></svg>").ToString();

    /// <summary>Enough decimals to tell ticks <paramref name="step"/> apart; scientific notation for tiny steps (learning rates).</summary>
    public static string TickFormat(double step)
    {
        var decimals = Math.Max(0, -(int)Math.Floor(Math.Log10(step) + 1e-9));
        return decimals > 3 ? "0.0#e+0" : decimals == 0 ? "0" : "0." + new string('0', decimals);
    }

    private static void Axes(StringBuilder sb, IReadOnlyList<double> xTicks, string xFormat, IReadOnlyList<double> yTicks, string yFormat,
        Func<double, double> x, Func<double, double> y, string xLabel, string yLabel)
    {
        foreach (var t in yTicks)
        {
            sb.Append($"<line class=\"grid\" x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{F(y(t))}\" y2=\"{F(y(t))}\"/>");
            sb.Append($"<text class=\"tick\" x=\"{Left - 6}\" y=\"{F(y(t) + 4)}\" text-anchor=\"end\">{F(t, yFormat)}</text>");
        }
        foreach (var t in xTicks)
            sb.Append($"<text class=\"tick\" x=\"{F(x(t))}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\">{F(t, xFormat)}</text>");
        AxisLines(sb, xLabel, yLabel);
    }

    private static void AxisLines(StringBuilder sb, string xLabel, string yLabel)
    {
        sb.Append($"<line class=\"axis\" x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Height - Bottom}\"/>");
        sb.Append($"<line class=\"axis\" x1=\"{Left}\" y1=\"{Height - Bottom}\" x2=\"{Width - Right}\" y2=\"{Height - Bottom}\"/>");
        sb.Append($"<text class=\"label\" x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 8}\" text-anchor=\"middle\">{WebUtility.HtmlEncode(xLabel)}</text>");
        sb.Append($"<text class=\"label\" x=\"14\" y=\"{(Top + Height - Bottom) / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {(Top + Height - Bottom) / 2})\">{WebUtility.HtmlEncode(yLabel)}</text>");
    }

    private static Func<double, double> Scale(double from, double to, double pixelFrom, double pixelTo) =>
        v => pixelFrom + (v - from) / (to - from) * (pixelTo - pixelFrom);

    private static string F(double v) => v.ToString("0.##", Invariant);

    private static string F(double v, string format) => v.ToString(format, Invariant);
}
