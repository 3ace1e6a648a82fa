namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// Everything that fixes one forward/backward step's launches on the GPU, so two steps with equal
/// shapes queue the same kernels with the same arguments (only the staged ids, positions, targets
/// and attention tables differ, and those are read from device buffers): the key of a captured step graph.
/// </summary>
/// <param name="Rows">Padded tokens of the batch.</param>
/// <param name="LossRows">Rows the loss head runs on.</param>
/// <param name="LossScale">The gradient scale the head is launched with (1/targets of the step).</param>
/// <param name="Backward">Whether the backward pass runs.</param>
/// <param name="Segments">The batch's runs of equal-length sequences (first row, sequences, length), as text.</param>
internal sealed record StepShape(int Rows, int LossRows, float LossScale, bool Backward, string Segments)
{
    /// <summary>The key of a step over <paramref name="segments"/>.</summary>
    public StepShape(int rows, int lossRows, float lossScale, bool backward, IReadOnlyList<AttentionSegment> segments)
        : this(rows, lossRows, lossScale, backward, string.Join(",", segments.Select(s => $"{s.FirstRow}:{s.Sequences}x{s.Length}")))
    {
    }

    /// <summary>Model switches that change the launches (fused LoRA products, one attention launch per batch, the adapter on), set by the model.</summary>
    public int Switches { get; init; }
}
