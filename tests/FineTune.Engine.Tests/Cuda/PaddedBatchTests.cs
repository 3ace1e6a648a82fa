using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>How a packed batch is laid out for the GPU's [sequences, length] attention (no GPU needed).</summary>
public sealed class PaddedBatchTests
{
    [Fact]
    public void Sequences_are_right_padded_and_only_real_target_rows_have_targets()
    {
        // Sequence 0: ids 5 6 7, tokens 1 and 2 are targets -> rows 0 and 1 predict 6 and 7.
        // Sequence 1: ids 8 9, token 1 is a target -> its row 0 predicts 9.
        var packed = PackedBatch.FromExamples([new TokenizedExample([5, 6, 7], [false, true, true]), new TokenizedExample([8, 9], [false, true])]);
        var b = PaddedBatch.From(packed, multiple: 4, vocab: 10);
        Assert.Equal(2, b.Sequences);
        Assert.Equal(4, b.Length);
        Assert.Equal([5, 6, 7, 0, 8, 9, 0, 0], b.Ids);
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 3], b.Positions);
        Assert.Equal([6, 7, -1, -1, 9, -1, -1, -1], b.Targets);
    }

    [Fact]
    public void A_token_outside_the_vocabulary_is_a_data_error()
    {
        var packed = PackedBatch.FromExamples([new TokenizedExample([1, 12], [false, true])]);
        Assert.Equal("FT3019", Assert.Throws<FineTuneException>(() => PaddedBatch.From(packed, 16, vocab: 10)).Code);
    }
}
