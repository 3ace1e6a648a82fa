using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// A <see cref="PackedBatch"/> laid out for the attention kernels: sequences end to end, each
/// right-padded to a small multiple of its own length (so few distinct matrix shapes occur), never
/// to the batch's longest: real SFT batches mix a few long examples with many short ones. Padding rows come after every real token of their sequence, so under
/// the causal mask they change nothing the real rows see; their target is -1, so they add no loss
/// and no gradient. Every per-token product runs over these rows alone; attention runs once per
/// <see cref="Segments"/> entry, a run of consecutive sequences of one padded length.
/// </summary>
internal sealed class PaddedBatch
{
    public required int[] Ids { get; init; }
    public required int[] Positions { get; init; }
    /// <summary>The token each row predicts, -1 where the row is not a loss row.</summary>
    public required int[] Targets { get; init; }
    /// <summary>Runs of consecutive sequences of equal padded length, in row order, covering every row.</summary>
    public required IReadOnlyList<AttentionSegment> Segments { get; init; }

    public int Rows => Ids.Length;

    /// <summary>The rows with a target, ascending (the rows the loss head runs on).</summary>
    public int[] LossRows => Enumerable.Range(0, Targets.Length).Where(i => Targets[i] >= 0).ToArray();

    public static PaddedBatch From(PackedBatch b, int multiple, int vocab)
    {
        var s = b.SeqStarts.Length;
        var padded = b.SeqLengths.Select(len => (len + multiple - 1) / multiple * multiple).ToArray();
        var starts = new int[s];
        for (var q = 1; q < s; q++) starts[q] = starts[q - 1] + padded[q - 1];
        var rows = s == 0 ? 0 : starts[s - 1] + padded[s - 1];
        var ids = new int[rows];
        var positions = new int[rows];
        var targets = new int[rows];
        Array.Fill(targets, -1);
        var seqOfRow = new int[b.TokenCount];
        for (var q = 0; q < s; q++)
        {
            for (var t = 0; t < padded[q]; t++) positions[starts[q] + t] = t;
            for (var t = 0; t < b.SeqLengths[q]; t++)
            {
                var id = b.Ids[b.SeqStarts[q] + t];
                if ((uint)id >= (uint)vocab)
                    throw new FineTuneException("FT3019", $"Token id {id} is outside the model's vocabulary of {vocab}; the data was tokenized with another tokenizer.");
                ids[starts[q] + t] = id;
                positions[starts[q] + t] = b.Positions[b.SeqStarts[q] + t];
                seqOfRow[b.SeqStarts[q] + t] = q;
            }
        }
        for (var i = 0; i < b.LossRows.Length; i++)
        {
            var row = b.LossRows[i];
            var q = seqOfRow[row];
            targets[starts[q] + row - b.SeqStarts[q]] = b.LossTargets[i];
        }
        var segments = new List<AttentionSegment>();
        for (var q = 0; q < s; q++)
        {
            if (segments.Count > 0 && segments[^1].Length == padded[q])
                segments[^1] = segments[^1] with { Sequences = segments[^1].Sequences + 1 };
            else
                segments.Add(new AttentionSegment(starts[q], 1, padded[q]));
        }
        return new PaddedBatch { Ids = ids, Positions = positions, Targets = targets, Segments = segments };
    }
}

/// <summary><paramref name="Sequences"/> consecutive sequences of <paramref name="Length"/> rows each, from row <paramref name="FirstRow"/>.</summary>
internal readonly record struct AttentionSegment(int FirstRow, int Sequences, int Length);
