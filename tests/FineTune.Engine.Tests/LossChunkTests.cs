using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests;

/// <summary>
/// The CPU head takes the loss rows a chunk at a time (equal chunks of whole register tiles, sized by
/// the vocabulary). A row's loss must not depend on which chunk it lands in or where that chunk
/// starts: packed sequences whose rows span two chunks give every row the bytes it gets alone.
/// </summary>
public class LossChunkTests
{
    [Fact]
    public void Rows_split_across_head_chunks_get_the_bytes_they_get_alone()
    {
        using var dir = new TempDir();
        var c = TestModels.Config(vocab: 120_000);
        TestModels.WriteModel(dir["m"], c);
        var weights = LlamaWeights.Load(dir["m"]);
        var rng = new DeterministicRandom(3);
        TokenizedExample Example(int length) =>
            new(Enumerable.Range(0, length).Select(_ => rng.NextInt(c.VocabSize)).ToArray(), Enumerable.Repeat(true, length).ToArray());
        var first = Example(150);
        var second = Example(120);
        double[] RowLosses(params TokenizedExample[] examples) =>
            new LlamaGraph(weights, null, new CpuBackend(2)).ForwardBackwardRows(PackedBatch.FromExamples(examples), _ => null);
        var packed = RowLosses(first, second);
        Assert.True(packed.Length > LlamaGraph.LossChunkRows(c.VocabSize), "the packed rows need more than one chunk");
        var alone = RowLosses(first).Concat(RowLosses(second)).ToArray();
        Assert.Equal(alone.Length, packed.Length);
        for (var i = 0; i < packed.Length; i++) Assert.True(alone[i] == packed[i], $"row {i}: {alone[i]:R} alone, {packed[i]:R} packed");
    }
}
