using FineTune.Cli.Chat;
using FineTune.Engine.Inference;
using FineTune.Engine.Model;

namespace FineTune.Cli.Tests.Chat;

public class EngineLanguageModelTests
{
    /// <summary>
    /// Chat asks for the next token after the whole conversation each time; the cached model must
    /// answer as a full recomputation would whether the new sequence extends the cached one, leaves
    /// it for another continuation of a shared prefix (a new turn), or repeats it.
    /// </summary>
    [Fact]
    public void Answers_like_full_recompute_when_a_sequence_grows_branches_or_repeats()
    {
        using var dir = new TempDir();
        TinyModelFactory.Create(ChatFixture.TokenizerDir(), dir.File("model"), new TinyModelShape());
        var reference = LlamaModel.Load(dir.File("model"));
        var chat = new EngineLanguageModel(LlamaDecoder.Load(dir.File("model")));
        int[] turn = [128000, 9906, 11, 1268, 527, 499, 30];
        int[][] asked =
        [
            turn,
            [.. turn, 358],
            [.. turn, 358, 1097],
            [.. turn[..4], 1093, 10],   // another turn after a shared prefix
            [.. turn[..4], 1093, 10],   // the same again: fully cached
            [.. turn, 358],
        ];
        foreach (var ids in asked)
        {
            var full = reference.Logits(ids);
            var expected = full.AsSpan(full.Length - chat.VocabSize);
            var actual = chat.NextTokenLogits(ids);
            var scale = 0f;
            var diff = 0f;
            for (var i = 0; i < expected.Length; i++)
            {
                scale = Math.Max(scale, Math.Abs(expected[i]));
                diff = Math.Max(diff, Math.Abs(expected[i] - actual[i]));
            }
            // The engine's own test explains the tolerance (same operations; at most summation order differs).
            Assert.True(diff <= 1e-4f * scale, $"[{string.Join(", ", ids)}]: max |difference| {diff:E3}");
        }
    }
}
