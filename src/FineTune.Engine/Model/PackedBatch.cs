using FineTune.Core.Datasets;

namespace FineTune.Engine.Model;

/// <summary>
/// Sequences packed end to end without padding: attention and positions restart at each sequence,
/// so the result equals running each sequence alone (or a right-padded batch with a mask).
/// <see cref="LossRows"/> are the rows whose output predicts a target token.
/// </summary>
public sealed class PackedBatch
{
    /// <summary>Token ids of all sequences, concatenated.</summary>
    public required int[] Ids { get; init; }
    /// <summary>Position of each token within its sequence.</summary>
    public required int[] Positions { get; init; }
    /// <summary>First row of each sequence.</summary>
    public required int[] SeqStarts { get; init; }
    /// <summary>Length of each sequence.</summary>
    public required int[] SeqLengths { get; init; }
    /// <summary>Rows whose logits enter the loss (row t predicts token t+1 of the same sequence).</summary>
    public required int[] LossRows { get; init; }
    /// <summary>The token each loss row must predict.</summary>
    public required int[] LossTargets { get; init; }

    /// <summary>Total rows.</summary>
    public int TokenCount => Ids.Length;

    /// <summary>The loss rows <paramref name="example"/> brings to any batch it is packed into.</summary>
    public static int LossRowCount(TokenizedExample example)
    {
        var n = 0;
        for (var t = 1; t < example.Length; t++)
            if (example.Targets[t]) n++;
        return n;
    }

    /// <summary>Packs training examples; token t with Targets[t] is predicted by row t-1.</summary>
    public static PackedBatch FromExamples(IReadOnlyList<TokenizedExample> examples)
    {
        var total = examples.Sum(e => e.Length);
        var ids = new int[total];
        var pos = new int[total];
        var starts = new int[examples.Count];
        var lengths = new int[examples.Count];
        var rows = new List<int>();
        var targets = new List<int>();
        var at = 0;
        for (var s = 0; s < examples.Count; s++)
        {
            var e = examples[s];
            starts[s] = at;
            lengths[s] = e.Length;
            for (var t = 0; t < e.Length; t++)
            {
                ids[at + t] = e.Ids[t];
                pos[at + t] = t;
                if (t > 0 && e.Targets[t])
                {
                    rows.Add(at + t - 1);
                    targets.Add(e.Ids[t]);
                }
            }
            at += e.Length;
        }
        return new PackedBatch { Ids = ids, Positions = pos, SeqStarts = starts, SeqLengths = lengths, LossRows = [.. rows], LossTargets = [.. targets] };
    }

    /// <summary>One sequence whose every row's logits are wanted (inference).</summary>
    public static PackedBatch ForInference(ReadOnlySpan<int> ids, int firstPosition = 0)
    {
        var n = ids.Length;
        return new PackedBatch
        {
            Ids = ids.ToArray(),
            Positions = Enumerable.Range(firstPosition, n).ToArray(),
            SeqStarts = [0],
            SeqLengths = [n],
            LossRows = Enumerable.Range(0, n).ToArray(),
            LossTargets = new int[n],
        };
    }
}
