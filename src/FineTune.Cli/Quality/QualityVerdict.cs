using System.Globalization;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Quality;

/// <summary>A finding of the quality gate: an error fails the build, a warning is reported.</summary>
public sealed record QualityFinding(Severity Severity, string Code, string Message);

/// <summary>
/// Judges a <see cref="QualityCheck"/>: a GGUF whose perplexity exceeds the trained model's by more
/// than <c>FineTuneMaxQuantizationLoss</c> is an error (FT4042) naming it and a higher-precision
/// type; without the property, more than <see cref="DefaultWarningGap"/> is a warning (FT4043).
/// When most of a GGUF's held-out replies run to the token limit instead of a stop token, a
/// warning (FT4044) says the model does not learn to stop.
/// </summary>
public static class QualityVerdict
{
    /// <summary>The perplexity gap above which a warning is given when no limit is set (10%).</summary>
    public const double DefaultWarningGap = 0.10;

    // Lowest to highest precision, as llama.cpp's file types go.
    private static readonly string[] Precision = ["Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16", "F32"];

    /// <summary>The findings for <paramref name="check"/>; <paramref name="maxGap"/> is FineTuneMaxQuantizationLoss, or null.</summary>
    public static IReadOnlyList<QualityFinding> Judge(QualityCheck check, double? maxGap)
    {
        var findings = new List<QualityFinding>();
        foreach (var q in check.Quantizations.Where(q => double.IsFinite(q.PerplexityGap)))
        {
            var measured = string.Create(CultureInfo.InvariantCulture,
                $"{q.Quantization} ({q.File}) has {q.PerplexityGap:+0.0%;-0.0%} perplexity against the trained model ({q.Perplexity:G5} vs {check.TrainedPerplexity:G5} on {check.TargetTokens} target tokens of the {check.Data} split)");
            if (maxGap is { } limit && q.PerplexityGap > limit)
                findings.Add(new(Severity.Error, "FT4042",
                    $"{measured}, more than FineTuneMaxQuantizationLoss ({limit.ToString("0.###", CultureInfo.InvariantCulture)} = {limit:0.#%}). {Suggest(q.Quantization)}"));
            else if (maxGap is null && q.PerplexityGap > DefaultWarningGap)
                findings.Add(new(Severity.Warning, "FT4043",
                    $"{measured}, more than {DefaultWarningGap:0%}. {Suggest(q.Quantization)} Set FineTuneMaxQuantizationLoss (e.g. 0.05) to make this an error."));
        }
        var runOn = check.Quantizations.Where(q => q.Replies > 0 && q.RepliesStopped * 2 < q.Replies).ToList();
        if (runOn.Count > 0)
            findings.Add(new(Severity.Warning, "FT4044",
                $"The model does not learn to stop: {string.Join(", ", runOn.Select(q => $"{q.Quantization} ended {q.RepliesStopped} of {q.Replies}"))} held-out replies at a stop token within FineTuneSampleMaxTokens ({check.MaxTokens}); " +
                $"the trained model ended {check.TrainedRepliesStopped} of {check.Replies.Count}. In Ollama such replies run on until num_predict. " +
                "Keep train_on_responses_only: true (the default) so the end-of-turn marker is trained, check that the chat template ends each assistant turn with its end-of-turn marker (the Modelfile's stops), and train more steps (max_steps / num_train_epochs); raise FineTuneSampleMaxTokens if the replies are simply long."));
        return findings;
    }

    /// <summary>A higher-precision type to try, or what to do when none is higher.</summary>
    public static string Suggest(string quantization)
    {
        var i = Array.IndexOf(Precision, quantization);
        if (i < 0 || i >= Precision.Length - 1)
            return "Keep this type only if the gap is acceptable (raise FineTuneMaxQuantizationLoss), or train longer so the model is less sensitive to rounding.";
        var higher = Precision[i + 1];
        return $"Use a higher-precision type in GgufQuantizations, e.g. {higher} instead of {quantization}.";
    }
}
