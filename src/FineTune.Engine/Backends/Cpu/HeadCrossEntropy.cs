using System.Numerics.Tensors;

namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// Cross-entropy of a chunk of rows through the LM head, and d(loss)/d(rows), one vocabulary block per
/// task: each task computes its block of logits and, while they are in cache, the block's maximum and
/// sum of exponentials; the rows' log-sum-exp is then combined from the blocks in block order. The
/// backward pass turns each block into its share of the softmax gradient and multiplies it by the
/// head's block; the blocks' partial products are added in block order. Blocks are fixed in size, so
/// the bytes do not depend on the thread count.
/// </summary>
internal static class HeadCrossEntropy
{
    /// <summary>Vocabulary columns per task: a multiple of every panel width.</summary>
    public const int Block = 512;

    /// <summary>
    /// Rows per chunk: whole register tiles, with the chunk's logits kept near 24M floats. Each chunk reads
    /// the whole head twice (logits, then gradient), so fewer, larger chunks read it less often; 256 rows
    /// keep a block's logits (256 × 512) in L2 while its softmax runs.
    /// </summary>
    public static int ChunkRows(int vocab) =>
        Math.Clamp((24 << 20) / vocab / GemmKernels.Rows * GemmKernels.Rows, GemmKernels.Rows, 256);

    /// <summary>Buffers reused from chunk to chunk.</summary>
    public sealed class Workspace
    {
        public float[] Logits = [], Partials = [], BlockMax = [], BlockSum = [], Factor = [], TargetLogit = [];
        public double[] BlockRaw = [];
    }

    /// <summary>
    /// Rows x[m×h] against head[vocab×h] (<paramref name="packedHead"/> is its prepared form). Writes each
    /// row's cross-entropy against targets[t0 + i] to loss[t0 + i] and, when <paramref name="means"/> is
    /// given, its mean logit; with <paramref name="scales"/> (d(loss)/d(cross-entropy) of each row) also
    /// dx[m×h].
    /// </summary>
    public static void Run(IComputeBackend be, float[] x, float[] head, PackedPanels? packedHead, int m, int h, int vocab,
        int[] targets, int t0, float[]? scales, double[] loss, double[]? means, float[] dx, Workspace ws)
    {
        var blocks = (vocab + Block - 1) / Block;
        Grow(ref ws.Logits, (long)m * vocab);
        Grow(ref ws.BlockMax, m * blocks);
        Grow(ref ws.BlockSum, m * blocks);
        Grow(ref ws.Factor, m * blocks);
        Grow(ref ws.TargetLogit, m);
        if (ws.BlockRaw.Length < m * blocks) ws.BlockRaw = new double[m * blocks];
        var logits = ws.Logits;
        be.For(blocks, blk =>
        {
            int j0 = blk * Block, j1 = Math.Min(vocab, j0 + Block);
            Gemm.Serial(new GemmProblem(x, 0, h, 1, head, 0, h, 1, logits, 0, vocab, m, vocab, h, false, packedHead), j0, j1);
            for (var i = 0; i < m; i++)
            {
                var row = logits.AsSpan((int)((long)i * vocab + j0), j1 - j0);
                var target = targets[t0 + i];
                if (target >= j0 && target < j1) ws.TargetLogit[i] = row[target - j0];
                if (means is not null) ws.BlockRaw[i * blocks + blk] = TensorPrimitives.Sum(row);
                var max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, row);
                TensorPrimitives.Exp(row, row);
                ws.BlockMax[i * blocks + blk] = max;
                ws.BlockSum[i * blocks + blk] = TensorPrimitives.Sum(row);
            }
        });
        // Rows are independent: combined in parallel (each row's blocks in block order).
        be.For(m, i =>
        {
            var stats = i * blocks;
            var max = TensorPrimitives.Max(ws.BlockMax.AsSpan(stats, blocks));
            var sum = 0.0;
            for (var b = 0; b < blocks; b++) sum += ws.BlockSum[stats + b] * Math.Exp(ws.BlockMax[stats + b] - max);
            loss[t0 + i] = Math.Log(sum) + max - ws.TargetLogit[i];
            if (means is not null)
            {
                var raw = 0.0;
                for (var b = 0; b < blocks; b++) raw += ws.BlockRaw[stats + b];
                means[t0 + i] = raw / vocab;
            }
            if (scales is null) return;
            for (var b = 0; b < blocks; b++)
                ws.Factor[stats + b] = (float)(scales[t0 + i] * Math.Exp(ws.BlockMax[stats + b] - max) / sum);
        });
        if (scales is null) return;
        Grow(ref ws.Partials, (long)blocks * m * h);
        var partials = ws.Partials;
        be.For(blocks, blk =>
        {
            int j0 = blk * Block, j1 = Math.Min(vocab, j0 + Block);
            // The block's probabilities times the row's scale; the target's −scale is added to dx below.
            for (var i = 0; i < m; i++)
            {
                var row = logits.AsSpan((int)((long)i * vocab + j0), j1 - j0);
                TensorPrimitives.Multiply(row, ws.Factor[i * blocks + blk], row);
            }
            Gemm.Serial(new GemmProblem(logits, j0, vocab, 1, head, (long)j0 * h, 1, h, partials, (long)blk * m * h, h, m, h, j1 - j0, false));
        });
        be.For(m, i =>
        {
            var d = dx.AsSpan(i * h, h);
            partials.AsSpan(i * h, h).CopyTo(d);
            for (var b = 1; b < blocks; b++) TensorPrimitives.Add(d, partials.AsSpan((int)(((long)b * m + i) * h), h), d);
            var target = targets[t0 + i];
            TensorPrimitives.MultiplyAdd(head.AsSpan((int)((long)target * h), h), -scales[t0 + i], d, d);
        });
    }

    private static void Grow(ref float[] a, long size)
    {
        if (a.LongLength < size) a = new float[size];
    }
}
