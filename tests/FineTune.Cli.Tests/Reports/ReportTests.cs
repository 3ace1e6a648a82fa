using FineTune.Cli.Reports;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Tests.Reports;

public class ReportTests
{
    private static string Render(TempDir dir, bool withSamples = true)
    {
        ReportFixture.Write(dir, withSamples);
        string[] args = ["report", "--train-dir", dir.File("train"), "--stats", dir.File("stats.json"), "--config", dir.File("lora.yaml"), "--out", dir.File("out/report.html")];
        if (withSamples) args = [.. args, "--samples", dir.File("samples.json")];
        Assert.Equal(0, CliApp.RunAsync(args).Result);
        return dir.File("out/report.html");
    }

    [Fact]
    public void Chromium_renders_the_loss_chart()
    {
        using var dir = new TempDir();
        var report = Render(dir);

        var dom = Chromium.Run(report, "--dump-dom");
        Assert.Contains("<svg id=\"loss-chart\"", dom);
        Assert.Contains("data-series=\"train loss\"", dom);
        Assert.Contains("Tokens per example (train)", dom);

        // The sample generations: prompt, before and after side by side, the dataset's reply.
        Assert.Contains("<section id=\"samples\">", dom);
        Assert.Contains("FIRST SNOW! #WINTER", dom);
        Assert.Contains("ended: stop token", dom);
        Assert.Contains("I LOVE THE FIRST SNOW!", dom);

        var png = dir.File("report.png");
        // Tall enough for the whole page, down to the samples at the end.
        Chromium.Run(report, $"--screenshot={png}", "--window-size=1200,4000");
        var image = PngImage.Load(png);
        Assert.Equal(1200, image.Width);

        // The train-loss line is #e8590c (232, 89, 12), the validation markers #1c7ed6 (28, 126, 214);
        // nothing else on the page uses them. A drawn line covers most of the chart's width, which the
        // legend's swatch alone cannot.
        var (trainPixels, trainSpan) = Find(image, (232, 89, 12));
        var (validationPixels, _) = Find(image, (28, 126, 214));
        Assert.True(trainPixels > 500, $"only {trainPixels} pixels of the train-loss colour in the screenshot");
        Assert.True(trainSpan > 500, $"train-loss colour spans only {trainSpan} px horizontally");
        Assert.True(validationPixels > 50, $"only {validationPixels} pixels of the validation colour");
        // The "after" replies sit on #ebfbee (235, 251, 238), used nowhere else: two drawn boxes.
        var (afterPixels, afterSpan) = Find(image, (235, 251, 238));
        Assert.True(afterPixels > 5000 && afterSpan > 300, $"the fine-tuned replies' boxes cover only {afterPixels} pixels ({afterSpan} px wide)");
    }

    private static (int Count, int Span) Find(PngImage image, (int R, int G, int B) color)
    {
        int count = 0, minX = int.MaxValue, maxX = -1;
        for (var y = 0; y < image.Height; y++)
            for (var x = 0; x < image.Width; x++)
            {
                var (r, g, b) = image[x, y];
                if (Math.Abs(r - color.R) + Math.Abs(g - color.G) + Math.Abs(b - color.B) > 12) continue;
                count++;
                minX = Math.Min(minX, x);
                maxX = Math.Max(maxX, x);
            }
        return (count, maxX - minX);
    }

    [Fact]
    public void Report_is_self_contained_and_escapes_every_input_text()
    {
        using var dir = new TempDir();
        var html = File.ReadAllText(Render(dir));
        foreach (var external in new[] { "http:", "https:", "src=", "<script", "<link", "url(", "@import" })
            Assert.DoesNotContain(external, html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;", html);
        Assert.Contains("a &lt; b", html);
        Assert.Contains("B &gt; A", html);
    }

    [Fact]
    public void Report_shows_hyper_parameters_dataset_statistics_and_samples()
    {
        using var dir = new TempDir();
        var html = File.ReadAllText(Render(dir));
        Assert.Contains("<tr><th><code>r</code></th><td>8</td></tr>", html);
        Assert.Contains("<tr><th><code>lora_alpha</code></th><td>32</td></tr>", html);
        Assert.Contains("<tr><th><code>learning_rate</code></th><td>0.0002</td></tr>", html);
        Assert.Contains("<tr><th>train</th><td>950</td><td>123,456</td><td>40,000</td><td class=\"warn\">3</td><td>256</td></tr>", html);
        Assert.Contains("<tr><th>validation</th><td>50</td>", html);
        Assert.Contains("FIRST SNOW! #WINTER", html);
        Assert.Contains("<tr><th>device</th><td>cpu</td></tr>", html);
        // 4 validation evaluations, each a marker on the chart.
        Assert.Equal(4, html.Split("<circle").Length - 1);
    }

    [Fact]
    public void Samples_are_optional()
    {
        using var dir = new TempDir();
        var html = File.ReadAllText(Render(dir, withSamples: false));
        Assert.DoesNotContain("Sample generations", html);
        Assert.Contains("loss-chart", html);
    }

    [Fact]
    public void Malformed_metrics_line_is_reported_at_its_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("metrics.jsonl"), "{\"step\":1,\"loss\":2.0}\n\n{\"step\":2,\"loss\":\"high\"}\n");
        var e = Assert.Throws<FineTuneException>(() => TrainingRun.ReadMetrics(dir.File("metrics.jsonl")));
        Assert.Equal(("FT7005", 3), (e.Code, e.Line));
    }

    [Fact]
    public async Task Missing_input_is_FT7006_and_no_report_is_written()
    {
        using var dir = new TempDir();
        ReportFixture.Write(dir);
        File.Delete(dir.File("train/metrics.jsonl"));
        var code = (await CliApp.RunAsync(["report", "--train-dir", dir.File("train"), "--stats", dir.File("stats.json"), "--config", dir.File("lora.yaml"), "--out", dir.File("report.html")]));
        Assert.Equal(1, code);
        Assert.False(File.Exists(dir.File("report.html")));
        var e = Assert.Throws<FineTuneException>(() => TrainingRun.ReadMetrics(dir.File("train/metrics.jsonl")));
        Assert.Equal("FT7006", e.Code);
    }

    [Theory]
    [InlineData(0.43, 2.9, 5, 0.5, 0.0, 3.0)]
    [InlineData(1, 60, 8, 10, 0, 60)]
    [InlineData(0.00002, 0.0002, 5, 0.00005, 0, 0.0002)]
    [InlineData(5, 5, 5, 0.2, 4.4, 5.6)] // flat series: +-10% around the value
    public void Axis_ticks_are_round_numbers_covering_the_data(double min, double max, int target, double step, double first, double last)
    {
        var (s, ticks) = AxisTicks.For(min, max, target);
        Assert.Equal(step, s, 1e-12);
        Assert.Equal(first, ticks[0], 1e-9);
        Assert.Equal(last, ticks[^1], 1e-9);
    }
}

public class TickFormatTests
{
    [Theory]
    [InlineData(10, 0.0, "0")]
    [InlineData(0.5, 2.5, "2.5")]
    [InlineData(0.2, 4.4, "4.4")]
    [InlineData(0.05, 0.15, "0.15")]
    [InlineData(0.00005, 0.00015, "1.5e-4")]
    public void Tick_labels_tell_neighbouring_ticks_apart(double step, double value, string label) =>
        Assert.Equal(label, value.ToString(SvgChart.TickFormat(step), System.Globalization.CultureInfo.InvariantCulture));
}
