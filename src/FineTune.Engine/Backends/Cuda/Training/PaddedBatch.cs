using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// A <see cref="PackedBatch"/> laid out as [sequences, length] for the attention kernels: each
/// sequence right-padded to the longest one (rounded up to a multiple, so few distinct matrix
/// shapes occur). Padding rows come after every real token of their sequence, so under the causal
/// mask they change nothing the real rows see; their target is -1, so they add no loss and no
/// gradient.
/// </summary>
internal sealed class PaddedBatch
{
    public required int Sequences { get; init; }
    public required int Length { get; init; }
    public required int[] Ids { get; init; }
    public required int[] Positions { get; init; }
    /// <summary>The token each row predicts, -1 where the row is not a loss row.</summary>
    public required int[] Targets { get; init; }

    public int Rows => Sequences * Length;

    /// <summary>The rows with a target, ascending (the rows the loss head runs on).</summary>
    public int[] LossRows => Enumerable.Range(0, Targets.Length).Where(i => Targets[i] >= 0).ToArray();

    public static PaddedBatch From(PackedBatch b, int multiple, int vocab)
    {
        var longest = b.SeqLengths.Max();
        var length = (longest + multiple - 1) / multiple * multiple;
        var s = b.SeqStarts.Length;
        var ids = new int[s * length];
        var positions = new int[s * length];
        var targets = new int[s * length];
        Array.Fill(targets, -1);
        var seqOfRow = new int[b.TokenCount];
        for (var q = 0; q < s; q++)
        {
            for (var t = 0; t < length; t++) positions[q * length + t] = t;
            for (var t = 0; t < b.SeqLengths[q]; t++)
            {
                var id = b.Ids[b.SeqStarts[q] + t];
                if ((uint)id >= (uint)vocab)
                    throw new FineTuneException("FT3019", $"Token id {id} is outside the model's vocabulary of {vocab}; the data was tokenized with another tokenizer.");
                ids[q * length + t] = id;
                positions[q * length + t] = b.Positions[b.SeqStarts[q] + t];
                seqOfRow[b.SeqStarts[q] + t] = q;
            }
        }
        for (var i = 0; i < b.LossRows.Length; i++)
        {
            var row = b.LossRows[i];
            var q = seqOfRow[row];
            targets[q * length + row - b.SeqStarts[q]] = b.LossTargets[i];
        }
        return new PaddedBatch { Sequences = s, Length = length, Ids = ids, Positions = positions, Targets = targets };
    }
}
