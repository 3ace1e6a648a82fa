using FineTune.Engine.Backends.Cuda.Training;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>How a LoRA weight gradient's launch splits the batch's tokens (no GPU needed): every token in exactly one slice, within the workspace.</summary>
public sealed class LoraGradientSplitTests
{
    // dB and dA shapes of SmolLM2-135M (8 x 2048 tokens), Llama-3.2-1B (4 x 2048) and Llama-3.1-8B (2 x 2048) at r 16, a
    // rank-64 q/k/v group, short batches, on the H200's 132 SMs and a small GPU's 20.
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 576, 16, 16384, 132 }, { 192, 16, 16384, 132 }, { 1536, 16, 16384, 132 }, { 576, 48, 16384, 132 }, { 576, 32, 16384, 132 },
        { 2048, 16, 8192, 132 }, { 8192, 16, 8192, 132 }, { 2048, 48, 8192, 132 }, { 14336, 16, 4096, 132 }, { 4096, 192, 4096, 132 },
        { 576, 16, 40, 132 }, { 64, 8, 511, 132 }, { 576, 16, 16384, 20 }, { 262144, 64, 100000, 132 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Every_token_is_in_exactly_one_slice_and_the_partials_fit_the_workspace(int wide, int narrow, int tokens, int sms)
    {
        var s = LoraGradientKernels.Plan(wide, narrow, tokens, 2 * sms);
        Assert.True(s.Slices >= 1);
        Assert.Equal(0, s.SliceTokens % 64);
        Assert.True(s.Slices <= 64, "more than 8 groups of 8 slices");
        Assert.True((long)(s.Slices - 1) * s.SliceTokens < tokens, $"slice {s.Slices - 1} starts past the last token");
        Assert.True((long)s.Slices * s.SliceTokens >= tokens, "tokens left out of every slice");
        Assert.True(s.PTiles * LoraGradientKernels.TileRows >= wide && s.QTiles * s.QTile >= narrow, "gradient columns left out of every tile");
        if (s.Slices > 1)
        {
            // A partial tile per slice and one per group of 8 slices, per tile; a ticket per tile and per group.
            long tiles = (long)s.PTiles * s.QTiles, groups = (s.Slices + 7) / 8;
            Assert.True(tiles * (s.Slices + groups) * LoraGradientKernels.TileRows * s.QTile * 4 <= LoraGradientKernels.PartialBytes, "partials past the workspace");
            Assert.True(tiles * (1 + groups) <= LoraGradientKernels.TicketCount, "tickets past the workspace");
        }
    }

    [Fact]
    public void A_batch_shorter_than_two_slices_runs_as_one_and_needs_no_workspace()
    {
        Assert.Equal(1, LoraGradientKernels.Plan(576, 16, 500, 264).Slices);
        Assert.Equal(1, LoraGradientKernels.Plan(262144, 64, 100000, 264).Slices);
    }
}
