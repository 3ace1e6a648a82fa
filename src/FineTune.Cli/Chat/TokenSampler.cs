namespace FineTune.Cli.Chat;

/// <summary>
/// Picks the next token: the most likely one at temperature 0 (greedy, reproducible), otherwise a
/// draw from softmax(logits / temperature) with a seeded generator, so a given seed repeats.
/// </summary>
public sealed class TokenSampler(double temperature, int seed)
{
    private readonly Random _random = new(seed);

    /// <summary>Temperature; 0 means greedy.</summary>
    public double Temperature { get; } = temperature;

    /// <summary>The chosen token id.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        if (Temperature <= 0) return best;

        // Softmax relative to the maximum, for range safety; sampled by inverse CDF.
        var weights = new double[logits.Length];
        double total = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            weights[i] = Math.Exp((logits[i] - logits[best]) / Temperature);
            total += weights[i];
        }
        var u = _random.NextDouble() * total;
        for (var i = 0; i < weights.Length; i++)
        {
            u -= weights[i];
            if (u < 0) return i;
        }
        return best;
    }
}
