namespace FineTune.Core.Progress;

/// <summary>
/// What the trainer reports after each optimizer step (and after each evaluation, with
/// <see cref="EvalLoss"/> set). The CLI renders it as a live display in a terminal and as one plain
/// line per logging step under MSBuild or CI; the same values go to <c>metrics.jsonl</c>.
/// </summary>
public sealed record TrainingProgress
{
    /// <summary>Optimizer steps done (1-based).</summary>
    public required int Step { get; init; }
    /// <summary>Total optimizer steps planned.</summary>
    public required int TotalSteps { get; init; }
    /// <summary>Fractional epoch.</summary>
    public double Epoch { get; init; }
    /// <summary>Mean training loss over the step's target tokens.</summary>
    public double Loss { get; init; }
    /// <summary>Learning rate used for this step.</summary>
    public double LearningRate { get; init; }
    /// <summary>Gradient norm before clipping.</summary>
    public double GradNorm { get; init; }
    /// <summary>Tokens processed so far (all tokens, not only targets).</summary>
    public long Tokens { get; init; }
    /// <summary>Throughput over the run so far.</summary>
    public double TokensPerSecond { get; init; }
    /// <summary>Wall time since training started.</summary>
    public TimeSpan Elapsed { get; init; }
    /// <summary>Peak memory in bytes (process working set on CPU, device memory on GPU), when known.</summary>
    public long? PeakMemoryBytes { get; init; }
    /// <summary>Validation loss, set on evaluation reports only.</summary>
    public double? EvalLoss { get; init; }

    /// <summary>Further metrics under TRL's names (<c>rewards/accuracies</c>, <c>logps/chosen</c>, ...; <c>eval_</c>-prefixed on evaluation reports), empty for SFT.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Estimated time left, from the average step time so far.</summary>
    public TimeSpan Eta => Step <= 0 ? TimeSpan.Zero : Elapsed / Step * Math.Max(0, TotalSteps - Step);
}
