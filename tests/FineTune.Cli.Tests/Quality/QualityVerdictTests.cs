using FineTune.Cli.Commands;
using FineTune.Cli.Quality;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Tests.Quality;

/// <summary>The rules a user sets with FineTuneMaxQuantizationLoss and FineTuneSampleMaxTokens, on hand-made measurements.</summary>
public class QualityVerdictTests
{
    private static QualityCheck Check(double trainedPerplexity, params (string Type, double Perplexity, int Stopped)[] ggufs) => new(
        "validation", 16, 400, 48, Math.Log(trainedPerplexity), trainedPerplexity, 3,
        [.. ggufs.Select(g => new QuantizationResult(g.Type, $"m-1.0.0.{g.Type}.gguf", Math.Log(g.Perplexity), g.Perplexity,
            g.Perplexity / trainedPerplexity - 1, g.Stopped, 3, 0, "14 Q8_0"))],
        [.. Enumerable.Range(0, 3).Select(i => new ReplyComparison($"p{i}", new GateReply("a", "stop token", true), []))]);

    [Fact]
    public void A_gap_above_the_limit_is_an_error_naming_the_quantization_and_a_higher_precision_one()
    {
        var findings = QualityVerdict.Judge(Check(10, ("Q8_0", 10.1, 3), ("Q4_K_M", 10.6, 3)), maxGap: 0.05);
        var error = Assert.Single(findings);
        Assert.Equal(Severity.Error, error.Severity);
        Assert.Equal("FT4042", error.Code);
        Assert.Contains("Q4_K_M (m-1.0.0.Q4_K_M.gguf) has +6.0% perplexity", error.Message);
        Assert.Contains("FineTuneMaxQuantizationLoss (0.05 = 5%)", error.Message);
        Assert.Contains("Q5_K_M instead of Q4_K_M", error.Message);
    }

    [Fact]
    public void Without_a_limit_only_a_gap_above_ten_percent_warns()
    {
        Assert.Empty(QualityVerdict.Judge(Check(10, ("Q4_0", 10.99, 3)), maxGap: null));
        var warning = Assert.Single(QualityVerdict.Judge(Check(10, ("Q4_0", 11.2, 3)), maxGap: null));
        Assert.Equal((Severity.Warning, "FT4043"), (warning.Severity, warning.Code));
        Assert.Contains("Q4_K_M instead of Q4_0", warning.Message);
    }

    [Fact]
    public void Most_replies_running_to_the_token_limit_warn_that_the_model_does_not_learn_to_stop()
    {
        Assert.Empty(QualityVerdict.Judge(Check(10, ("Q8_0", 10, 2)), maxGap: null));
        var warning = Assert.Single(QualityVerdict.Judge(Check(10, ("Q8_0", 10, 1), ("F16", 10, 3)), maxGap: null));
        Assert.Equal((Severity.Warning, "FT4044"), (warning.Severity, warning.Code));
        Assert.Contains("Q8_0 ended 1 of 3", warning.Message);
        Assert.DoesNotContain("F16", warning.Message);
        Assert.Contains("train_on_responses_only", warning.Message);
        Assert.Contains("FineTuneSampleMaxTokens (48)", warning.Message);
    }

    [Theory]
    [InlineData("-0.1")]
    [InlineData("5%")]
    [InlineData("NaN")]
    public void A_limit_that_is_not_a_fraction_is_FT4045(string text) =>
        Assert.Equal("FT4045", Assert.Throws<FineTuneException>(() => GgufCheckCommand.ParseLimit(text)).Code);
}
