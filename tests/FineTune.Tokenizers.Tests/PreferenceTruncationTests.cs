using FineTune.Core.Datasets;
using FineTune.Tokenizers.Pipeline;

namespace FineTune.Tokenizers.Tests;

/// <summary>
/// TRL's truncation of preference pairs (DPOTrainer.tokenize_row): prompt first, to
/// max_prompt_length, then the completions to max_length - max_prompt_length. Expected ids are
/// worked out by hand from those rules.
/// </summary>
public sealed class PreferenceTruncationTests
{
    /// <summary>Prompt ids 1..p (not targets), completion ids 100.. (targets).</summary>
    private static TokenizedExample Example(int prompt, int completion) =>
        new([.. Enumerable.Range(1, prompt), .. Enumerable.Range(100, completion)],
            [.. Enumerable.Repeat(false, prompt), .. Enumerable.Repeat(true, completion)]);

    [Fact]
    public void A_pair_within_max_length_is_unchanged()
    {
        var (pair, note) = PreferenceTokenizeStep.Truncate(new TokenizedPair(Example(4, 3), Example(4, 5)), new(MaxLength: 9, MaxPromptLength: 4, KeepEnd: true));
        Assert.Null(note);
        Assert.Equal(9, pair.Rejected.Length);
    }

    [Theory]
    [InlineData(true, new[] { 5, 6, 7, 8 })]
    [InlineData(false, new[] { 1, 2, 3, 4 })]
    public void A_long_prompt_is_cut_to_max_prompt_length_keeping_its_end_or_start(bool keepEnd, int[] promptIds)
    {
        var (pair, note) = PreferenceTokenizeStep.Truncate(new TokenizedPair(Example(8, 3), Example(8, 2)), new(MaxLength: 8, MaxPromptLength: 4, KeepEnd: keepEnd));
        Assert.Equal([.. promptIds, 100, 101, 102], pair.Chosen.Ids);
        Assert.Equal([.. promptIds, 100, 101], pair.Rejected.Ids);
        Assert.Equal([false, false, false, false, true, true, true], pair.Chosen.Targets);
        Assert.Contains("max_prompt_length 4", note);
    }

    [Fact]
    public void When_still_too_long_both_completions_are_cut_to_max_length_minus_max_prompt_length()
    {
        var (pair, note) = PreferenceTokenizeStep.Truncate(new TokenizedPair(Example(6, 10), Example(6, 3)), new(MaxLength: 8, MaxPromptLength: 4, KeepEnd: true));
        Assert.Equal([3, 4, 5, 6, 100, 101, 102, 103], pair.Chosen.Ids);
        Assert.Equal([3, 4, 5, 6, 100, 101, 102], pair.Rejected.Ids);
        Assert.Contains("completions were cut to max_length - max_prompt_length = 4 tokens", note);
    }
}
