using FineTune.Engine.Backends.Cpu;

namespace FineTune.Engine.Tests;

/// <summary>
/// The loss and its gradient through the LM head, computed a vocabulary block at a time, against the
/// plain float64 definition (log-softmax over the whole row), on a vocabulary that ends part-way
/// through a block and a chunk of rows that ends part-way through a register tile.
/// </summary>
public class HeadCrossEntropyTests
{
    private const int Rows = 13, Hidden = 40, Vocab = 3 * HeadCrossEntropy.Block + 77;

    private static float[] Rand(int n, int seed, double scale)
    {
        var rng = new DeterministicRandom((ulong)seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextGaussian() * scale)).ToArray();
    }

    private static (double[] Loss, double[] Means, float[] Dx) Run(int threads, float[] x, float[] head, int[] targets, float[]? scales)
    {
        var be = new CpuBackend(threads);
        var loss = new double[Rows];
        var means = scales is null ? new double[Rows] : null;
        var dx = new float[Rows * Hidden];
        HeadCrossEntropy.Run(be, x, head, (PackedPanels)be.PrepareTransposedOperand(head, Vocab, Hidden), Rows, Hidden, Vocab,
            targets, 0, scales, loss, means, dx, new HeadCrossEntropy.Workspace());
        return (loss, means ?? [], dx);
    }

    [Fact]
    public void Loss_mean_logit_and_row_gradients_match_the_float64_definition_for_any_thread_count()
    {
        var x = Rand(Rows * Hidden, 1, 1);
        var head = Rand(Vocab * Hidden, 2, 0.5);
        var targets = Enumerable.Range(0, Rows).Select(i => (i * 397 + 11) % Vocab).ToArray();
        targets[^1] = Vocab - 1; // in the last, partial block
        var scales = Enumerable.Range(0, Rows).Select(i => 0.5f + i / 10f).ToArray();

        var forward = Run(3, x, head, targets, null);
        var (loss, _, dx) = Run(3, x, head, targets, scales);
        for (var i = 0; i < Rows; i++)
        {
            var logits = new double[Vocab];
            for (var v = 0; v < Vocab; v++)
                for (var p = 0; p < Hidden; p++) logits[v] += (double)x[i * Hidden + p] * head[v * Hidden + p];
            var max = logits.Max();
            var sum = logits.Sum(l => Math.Exp(l - max));
            var expected = Math.Log(sum) + max - logits[targets[i]];
            Assert.Equal(expected, loss[i], 1e-4 * Math.Max(1, Math.Abs(expected)));
            Assert.Equal(expected, forward.Loss[i], 1e-4 * Math.Max(1, Math.Abs(expected)));
            Assert.Equal(logits.Average(), forward.Means[i], 1e-4);
            for (var p = 0; p < Hidden; p++)
            {
                var g = 0.0;
                for (var v = 0; v < Vocab; v++) g += (Math.Exp(logits[v] - max) / sum - (v == targets[i] ? 1 : 0)) * head[v * Hidden + p];
                Assert.Equal(scales[i] * g, dx[i * Hidden + p], 1e-5 * Math.Max(1, Math.Abs(scales[i] * g)));
            }
        }
        foreach (var threads in new[] { 1, 2, 16 })
        {
            var other = Run(threads, x, head, targets, scales);
            Assert.Equal(loss, other.Loss);
            Assert.True(dx.AsSpan().SequenceEqual(other.Dx), $"{threads} threads");
        }
    }
}
