using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>How a packed batch is laid out for the GPU's attention launches (no GPU needed).</summary>
public sealed class PaddedBatchTests
{
    [Fact]
    public void Sequences_are_right_padded_and_only_real_target_rows_have_targets()
    {
        // Sequence 0: ids 5 6 7, tokens 1 and 2 are targets -> rows 0 and 1 predict 6 and 7.
        // Sequence 1: ids 8 9, token 1 is a target -> its row 0 predicts 9.
        var packed = PackedBatch.FromExamples([new TokenizedExample([5, 6, 7], [false, true, true]), new TokenizedExample([8, 9], [false, true])]);
        var b = PaddedBatch.From(packed, multiple: 4, vocab: 10);
        Assert.Equal([new AttentionSegment(0, 2, 4)], b.Segments);
        Assert.Equal([5, 6, 7, 0, 8, 9, 0, 0], b.Ids);
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 3], b.Positions);
        Assert.Equal([6, 7, -1, -1, 9, -1, -1, -1], b.Targets);
    }

    [Fact]
    public void A_short_sequence_is_padded_to_its_own_multiple_not_to_the_longest_in_the_batch()
    {
        // Lengths 6, 2, 3 with multiple 4 -> 8, 4, 4 rows (16 in all; padding to the longest would be 24).
        var packed = PackedBatch.FromExamples([
            new TokenizedExample([1, 2, 3, 4, 5, 6], [false, false, false, true, true, true]),
            new TokenizedExample([7, 8], [false, true]),
            new TokenizedExample([9, 1, 2], [false, false, true])]);
        var b = PaddedBatch.From(packed, multiple: 4, vocab: 10);
        Assert.Equal(16, b.Rows);
        Assert.Equal([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 0, 0, 9, 1, 2, 0], b.Ids);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 0, 1, 2, 3], b.Positions);
        Assert.Equal([-1, -1, 4, 5, 6, -1, -1, -1, 8, -1, -1, -1, -1, 2, -1, -1], b.Targets);
        // One attention launch for the 8-row sequence, one for the two 4-row ones after it.
        Assert.Equal([new AttentionSegment(0, 1, 8), new AttentionSegment(8, 2, 4)], b.Segments);
    }

    [Fact]
    public void A_token_outside_the_vocabulary_is_a_data_error()
    {
        var packed = PackedBatch.FromExamples([new TokenizedExample([1, 12], [false, true])]);
        Assert.Equal("FT3019", Assert.Throws<FineTuneException>(() => PaddedBatch.From(packed, 16, vocab: 10)).Code);
    }
}
