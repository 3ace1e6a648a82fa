namespace FineTune.Core.Datasets;

/// <summary>
/// One training example after tokenization. <see cref="Targets"/>[t] is true when token t is a
/// prediction target, i.e. the loss includes predicting <c>Ids[t]</c> from <c>Ids[0..t-1]</c>
/// (assistant replies and their end-of-turn token by default; every token for raw text).
/// </summary>
public sealed record TokenizedExample(int[] Ids, bool[] Targets)
{
    /// <summary>Number of tokens.</summary>
    public int Length => Ids.Length;

    /// <summary>Number of tokens that count in the loss.</summary>
    public int TargetCount => Targets.Count(t => t);
}
