namespace FineTune.Engine.Training;

/// <summary>
/// Learning rate per optimizer step, as Hugging Face's schedulers compute it (a LambdaLR factor on
/// the base rate, evaluated at the 0-based step index): linear and cosine decay to zero after a
/// linear warm-up; constant keeps the rate after the warm-up.
/// </summary>
public sealed class LrSchedule
{
    /// <summary>Builds a schedule; <paramref name="warmupSteps"/> wins over <paramref name="warmupRatio"/> when above zero.</summary>
    public LrSchedule(string type, double baseRate, int totalSteps, int warmupSteps, double warmupRatio)
    {
        Type = type;
        BaseRate = baseRate;
        TotalSteps = totalSteps;
        WarmupSteps = warmupSteps > 0 ? warmupSteps : (int)Math.Ceiling(totalSteps * warmupRatio);
    }

    /// <summary>linear, cosine or constant.</summary>
    public string Type { get; }
    /// <summary>The configured <c>learning_rate</c>.</summary>
    public double BaseRate { get; }
    /// <summary>Optimizer steps in the run.</summary>
    public int TotalSteps { get; }
    /// <summary>Warm-up steps after resolving the ratio (rounded up, as Hugging Face does).</summary>
    public int WarmupSteps { get; }

    /// <summary>The rate for the optimizer step with 0-based index <paramref name="step"/>.</summary>
    public double At(int step)
    {
        if (step < WarmupSteps) return BaseRate * step / Math.Max(1, WarmupSteps);
        var progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Type switch
        {
            "linear" => BaseRate * Math.Max(0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            "cosine" => BaseRate * Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress))),
            _ => BaseRate,
        };
    }
}
