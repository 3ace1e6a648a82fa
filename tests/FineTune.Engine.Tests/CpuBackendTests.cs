using FineTune.Engine.Backends.Cpu;

namespace FineTune.Engine.Tests;

/// <summary>
/// The CPU matrix products against the plain definition: each output is one fused multiply-add chain
/// over k in order. Equality is exact, which is what makes the bytes independent of the thread
/// count, the blocking and the vector width (AVX-512, AVX2 or scalar).
/// </summary>
public class CpuBackendTests
{
    private static float[] Rand(int n, int seed)
    {
        var rng = new DeterministicRandom((ulong)seed);
        return Enumerable.Range(0, n).Select(_ => (float)rng.NextGaussian()).ToArray();
    }

    /// <summary>Σ_p A(i,p)·B(p,j) as one fused chain, from <paramref name="start"/>.</summary>
    private static float Chain(Func<int, float> a, Func<int, float> b, int k0, int k1, float start)
    {
        var s = start;
        for (var p = k0; p < k1; p++) s = MathF.FusedMultiplyAdd(a(p), b(p), s);
        return s;
    }

    private enum Layout { NT, NN, TN }

    /// <summary>The expected C for one layout, summed the way the documented contract says.</summary>
    private static float[] Expected(Layout layout, float[] a, float[] b, float[] c0, int m, int n, int k, bool accumulate)
    {
        var expected = new float[m * n];
        var segments = Gemm.Segments(m, n, k);
        var seg = (k + segments - 1) / segments;
        for (var i = 0; i < m; i++)
            for (var j = 0; j < n; j++)
            {
                Func<int, float> ai = layout == Layout.TN ? p => a[p * m + i] : p => a[i * k + p];
                Func<int, float> bj = layout == Layout.NT ? p => b[j * k + p] : p => b[p * n + j];
                var old = c0[i * n + j];
                if (segments == 1)
                {
                    expected[i * n + j] = Chain(ai, bj, 0, k, accumulate ? old : 0);
                    continue;
                }
                var s = Chain(ai, bj, 0, Math.Min(k, seg), 0);
                for (var q = 1; q < segments; q++) s += Chain(ai, bj, Math.Min(k, q * seg), Math.Min(k, (q + 1) * seg), 0);
                expected[i * n + j] = accumulate ? old + s : s;
            }
        return expected;
    }

    private static float[] Run(Layout layout, int threads, float[] a, float[] b, float[] c0, int m, int n, int k, bool accumulate)
    {
        var be = new CpuBackend(threads);
        var c = (float[])c0.Clone();
        if (layout == Layout.NT) be.MatMulTransposed(a, 0, b, 0, c, 0, m, n, k, accumulate);
        else if (layout == Layout.NN) be.MatMul(a, 0, b, 0, c, 0, m, n, k, accumulate);
        else be.MatMulTransposedA(a, 0, b, 0, c, 0, m, n, k, accumulate);
        return c;
    }

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 3, 5, 7 },         // smaller than one register tile: two rows take the decoding path
        { 13, 37, 300 },     // ragged rows and columns, k over one 256-wide block
        { 48, 64, 64 },      // whole tiles
        { 16, 40, 9000 },    // long k, small C: summed in k-segments
        { 64, 33, 4096 },
        { 70, 16, 600 },     // the LoRA rank's width: 8-row tiles over one vector with AVX-512, ragged last tile
        { 21, 9, 300 },      // narrower still: columns past n dropped from the one-vector tile
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Products_are_fused_chains_over_k_in_order_for_every_layout(int m, int n, int k)
    {
        foreach (var layout in Enum.GetValues<Layout>())
            foreach (var accumulate in new[] { false, true })
            {
                if (layout == Layout.NT && m <= 2) continue; // decoding's dot products sum eight lanes, then the lanes
                var a = Rand(m * k, 1);
                var b = Rand(n * k, 2);
                var c0 = Rand(m * n, 3);
                var expected = Expected(layout, a, b, c0, m, n, k, accumulate);
                var actual = Run(layout, 3, a, b, c0, m, n, k, accumulate);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{layout} {m}x{n}x{k} accumulate={accumulate}");
            }
    }

    [Fact]
    public void One_thread_and_many_give_the_same_bytes()
    {
        const int m = 77, n = 150, k = 5000;
        var a = Rand(m * k, 4);
        var b = Rand(n * k, 5);
        var c0 = new float[m * n];
        var one = Run(Layout.NN, 1, a, b, c0, m, n, k, false);
        foreach (var threads in new[] { 2, 7, 16 })
            Assert.True(one.AsSpan().SequenceEqual(Run(Layout.NN, threads, a, b, c0, m, n, k, false)), $"{threads} threads");
    }

    [Theory]
    [InlineData(50, 70, 600)]
    [InlineData(64, 40, 9000)] // k-segments read the prepared panels part-way through k
    public void A_weight_prepared_once_gives_the_same_bytes_as_packing_per_product(int m, int n, int k)
    {
        var be = new CpuBackend(3);
        var a = Rand(m * k, 8);
        var w = Rand(n * k, 9);
        var direct = new float[m * n];
        var viaPrepared = new float[m * n];
        be.MatMulTransposed(a, 0, w, 0, direct, 0, m, n, k);
        be.MatMulTransposed(a, 0, w, be.PrepareTransposedOperand(w, n, k), viaPrepared, 0, m, n, k);
        Assert.True(direct.AsSpan().SequenceEqual(viaPrepared));
    }

    [Theory]
    [InlineData(50, 70, 600, 16)]
    [InlineData(2, 40, 300, 8)]     // decoding rows: two products after all
    [InlineData(64, 40, 9000, 16)]  // the first product in k-segments: the tail runs after it
    [InlineData(13, 37, 300, 0)]
    public void A_LoRA_path_fused_after_its_weight_gives_the_bytes_of_two_products(int m, int n, int k, int k2)
    {
        var be = new CpuBackend(3);
        var a = Rand(m * k, 10);
        var w = Rand(n * k, 11);
        var a2 = Rand(m * k2, 12);
        var b2 = Rand(n * k2, 13);
        foreach (var accumulate in new[] { false, true })
        {
            var c0 = Rand(m * n, 14);
            var twoNT = (float[])c0.Clone();
            be.MatMulTransposed(a, 0, w, 0, twoNT, 0, m, n, k, accumulate);
            be.MatMulTransposed(a2, 0, b2, 0, twoNT, 0, m, n, k2, accumulate: true);
            var fusedNT = (float[])c0.Clone();
            be.MatMulTransposedThen(a, w, be.PrepareTransposedOperand(w, n, k), a2, b2, fusedNT, m, n, k, k2, accumulate);
            Assert.True(twoNT.AsSpan().SequenceEqual(fusedNT), $"A·Wᵀ then LoRA, accumulate={accumulate}");
            var twoNN = (float[])c0.Clone();
            be.MatMul(a, 0, w, 0, twoNN, 0, m, n, k, accumulate);
            be.MatMul(a2, 0, b2, 0, twoNN, 0, m, n, k2, accumulate: true);
            var fusedNN = (float[])c0.Clone();
            be.MatMulThen(a, w, a2, b2, fusedNN, m, n, k, k2, accumulate);
            Assert.True(twoNN.AsSpan().SequenceEqual(fusedNN), $"A·B then LoRA, accumulate={accumulate}");
            // The backward pass's dy·W with W prepared once (packed as the B of A·B).
            var preparedNN = (float[])c0.Clone();
            be.MatMulThen(a, w, a2, b2, preparedNN, m, n, k, k2, accumulate, be.PrepareOperand(w, k, n));
            Assert.True(twoNN.AsSpan().SequenceEqual(preparedNN), $"A·W then LoRA, W prepared, accumulate={accumulate}");
        }
    }

    [Fact]
    public void Products_run_together_give_the_bytes_of_one_after_the_other()
    {
        // A LoRA backward's pairs (g = dy·B beside dB += dyᵀ·h; dx = dy·W + g·A beside dA += gᵀ·x), a
        // product summed in k-segments and decoding rows (both run at once), and a B packed by a parallel loop.
        const int n = 70, outF = 150, inF = 90, r = 16;
        var dy = Rand(n * outF, 20);
        var loraB = Rand(outF * r, 21);
        var hidden = Rand(n * r, 22);
        var w = Rand(outF * inF, 23);
        var g = Rand(n * r, 24);
        var loraA = Rand(r * inF, 25);
        var x = Rand(n * inF, 26);
        var longA = Rand(16 * 9000, 27);
        var longB = Rand(40 * 9000, 28);
        var wide = Rand(n * 200, 33);
        var big = Rand(300 * 200, 29);
        foreach (var threads in new[] { 1, 3 })
        {
            float[][] Outputs() => [new float[n * r], Rand(outF * r, 30), Rand(n * inF, 31), Rand(r * inF, 32), new float[16 * 40], new float[2 * 40], new float[n * 300]];
            void All(CpuBackend be, float[][] o)
            {
                be.MatMul(dy, 0, loraB, 0, o[0], 0, n, r, outF);
                be.MatMulTransposedA(dy, 0, hidden, 0, o[1], 0, outF, r, n, accumulate: true);
                be.MatMulThen(dy, w, g, loraA, o[2], n, inF, outF, r, accumulate: true);
                be.MatMulTransposedA(g, 0, x, 0, o[3], 0, r, inF, n, accumulate: true);
                be.MatMulTransposed(longA, 0, longB, 0, o[4], 0, 16, 40, 9000);
                be.MatMulTransposed(longA, 0, longB, 0, o[5], 0, 2, 40, 9000);
                be.MatMulTransposed(wide, 0, big, 0, o[6], 0, n, 300, 200);
            }
            var be = new CpuBackend(threads);
            var apart = Outputs();
            All(be, apart);
            var together = Outputs();
            using (be.Together()) All(be, together);
            for (var i = 0; i < apart.Length; i++)
                Assert.True(apart[i].AsSpan().SequenceEqual(together[i]), $"product {i}, {threads} threads");
        }
    }

    [Fact]
    public void Decoding_rows_match_the_blocked_product_closely()
    {
        const int n = 100, k = 130;
        var a = Rand(8 * k, 6);
        var b = Rand(n * k, 7);
        var blocked = Run(Layout.NT, 2, a, b, new float[8 * n], 8, n, k, false);
        var oneRow = Run(Layout.NT, 2, a, b, new float[n], 1, n, k, false);
        for (var j = 0; j < n; j++) Assert.Equal(blocked[j], oneRow[j], 1e-4f);
    }
}
