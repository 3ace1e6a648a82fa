using FineTune.Core.Datasets;

namespace FineTune.Tokenizers;

/// <summary>The result of <see cref="Tokenizer.Encode(string, bool)"/>: token ids and where each came from.</summary>
/// <param name="Ids">Token ids in order.</param>
/// <param name="Offsets">
/// For each token, the range of UTF-16 units of the input it covers. A token that is part of a
/// character covers the whole character; tokens inserted by the post-processor (e.g. BOS) have (0, 0).
/// </param>
public sealed record TokenEncoding(int[] Ids, TextSpan[] Offsets)
{
    /// <summary>Number of tokens.</summary>
    public int Count => Ids.Length;
}
