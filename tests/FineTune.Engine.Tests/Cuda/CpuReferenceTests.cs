using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// The float64 references the GPU kernels are checked against are themselves checked here,
/// against hand-computed values and central finite differences of their forward functions.
/// </summary>
public sealed class CpuReferenceTests
{
    private static double[] Rand(Random rng, int n, double scale = 1) => Enumerable.Range(0, n).Select(_ => (rng.NextDouble() * 2 - 1) * scale).ToArray();

    private static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();

    /// <summary>d/dx_i of f by central differences, for every i.</summary>
    private static double[] NumericGradient(double[] x, Func<double[], double> f)
    {
        const double h = 1e-5;
        var g = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            var keep = x[i];
            x[i] = keep + h;
            var up = f(x);
            x[i] = keep - h;
            var down = f(x);
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    private static void AssertClose(double[] expected, double[] actual, double tol = 1e-6) =>
        Assert.True(ErrorMetrics.Relative(actual, expected) < tol, $"relative error {ErrorMetrics.Relative(actual, expected)}");

    [Fact]
    public void Gemm_matches_a_hand_computed_product()
    {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]; with B transposed the stored B is [5 7; 6 8].
        Assert.Equal([19, 22, 43, 50], CpuReference.Gemm([1, 2, 3, 4], false, [5, 6, 7, 8], false, 2, 2, 2));
        Assert.Equal([19, 22, 43, 50], CpuReference.Gemm([1, 2, 3, 4], false, [5, 7, 6, 8], true, 2, 2, 2));
        Assert.Equal([19, 22, 43, 50], CpuReference.Gemm([1, 3, 2, 4], true, [5, 6, 7, 8], false, 2, 2, 2));
        Assert.Equal([20, 23, 44, 51], CpuReference.Gemm([1, 2, 3, 4], false, [5, 6, 7, 8], false, 2, 2, 2, [2, 2, 2, 2], 0.5));
    }

    [Fact]
    public void RmsNorm_backward_matches_finite_differences()
    {
        var rng = new Random(1);
        const int rows = 3, dim = 8;
        var x = Rand(rng, rows * dim, 2);
        var w = Rand(rng, dim);
        var dy = Rand(rng, rows * dim);
        var numeric = NumericGradient(x, xs => Dot(dy, CpuReference.RmsNorm(xs, w, rows, dim, 1e-5).Y));
        AssertClose(numeric, CpuReference.RmsNormBackward(dy, x, w, rows, dim, 1e-5));
    }

    [Fact]
    public void SwiGlu_backward_matches_finite_differences()
    {
        var rng = new Random(2);
        var gate = Rand(rng, 16, 4);
        var up = Rand(rng, 16, 2);
        var dh = Rand(rng, 16);
        var (dg, du) = CpuReference.SwiGluBackward(dh, gate, up);
        AssertClose(NumericGradient(gate, g => Dot(dh, CpuReference.SwiGlu(g, up))), dg);
        AssertClose(NumericGradient(up, u => Dot(dh, CpuReference.SwiGlu(gate, u))), du);
    }

    [Fact]
    public void GeGlu_backward_matches_finite_differences()
    {
        var rng = new Random(6);
        var gate = Rand(rng, 16, 4);
        var up = Rand(rng, 16, 2);
        var dh = Rand(rng, 16);
        var (dg, du) = CpuReference.GeGluBackward(dh, gate, up);
        AssertClose(NumericGradient(gate, g => Dot(dh, CpuReference.GeGlu(g, up))), dg);
        AssertClose(NumericGradient(up, u => Dot(dh, CpuReference.GeGlu(gate, u))), du);
        // gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906082768 (torch's gelu(approximate='tanh')).
        Assert.Equal(0.8411919906082768, CpuReference.GeGlu([1], [1])[0], 12);
    }

    [Fact]
    public void Rope_inverse_undoes_forward_and_position_zero_is_identity()
    {
        var rng = new Random(3);
        const int rows = 4, heads = 2, dim = 8;
        var x = Rand(rng, rows * heads * dim);
        var freqs = new[] { 1f, 0.1f, 0.01f, 0.001f };
        int[] positions = [0, 5, 100, 7000];
        var y = CpuReference.Rope(x, positions, freqs, rows, heads, dim, false);
        AssertClose(x, CpuReference.Rope(y, positions, freqs, rows, heads, dim, true), 1e-12);
        Assert.Equal(x[..(heads * dim)], y[..(heads * dim)]);
        // A quarter turn: position 1 with frequency pi/2 maps (a, b) to (-b, a).
        var turned = CpuReference.Rope([1, 2], [1], [MathF.PI / 2], 1, 1, 2, false);
        Assert.Equal(-2, turned[0], 6);
        Assert.Equal(1, turned[1], 6);
    }

    [Fact]
    public void Attention_backward_matches_finite_differences()
    {
        var rng = new Random(4);
        const int b = 1, t = 5, hq = 2, hkv = 1, d = 4;
        var q = Rand(rng, b * t * hq * d);
        var k = Rand(rng, b * t * hkv * d);
        var v = Rand(rng, b * t * hkv * d);
        var dout = Rand(rng, b * t * hq * d);
        var r = CpuReference.Attention(q, k, v, dout, b, t, hq, hkv, d);
        AssertClose(NumericGradient(q, qs => Dot(dout, CpuReference.Attention(qs, k, v, null, b, t, hq, hkv, d).Out)), r.DQ);
        AssertClose(NumericGradient(k, ks => Dot(dout, CpuReference.Attention(q, ks, v, null, b, t, hq, hkv, d).Out)), r.DK);
        AssertClose(NumericGradient(v, vs => Dot(dout, CpuReference.Attention(q, k, vs, null, b, t, hq, hkv, d).Out)), r.DV);
        // Causality: the first query attends only to the first key, so its output is that value row.
        Assert.Equal(v[..d], r.Out[..d]);
    }

    [Fact]
    public void Sliding_window_attention_backward_matches_finite_differences()
    {
        var rng = new Random(7);
        const int b = 1, t = 7, hq = 2, hkv = 1, d = 4, window = 3;
        const double scale = 0.3;
        var q = Rand(rng, b * t * hq * d);
        var k = Rand(rng, b * t * hkv * d);
        var v = Rand(rng, b * t * hkv * d);
        var dout = Rand(rng, b * t * hq * d);
        CpuReference.AttentionResult Run(double[] qs, double[] ks, double[] vs, double[]? g) => CpuReference.Attention(qs, ks, vs, g, b, t, hq, hkv, d, window, scale);
        var r = Run(q, k, v, dout);
        AssertClose(NumericGradient(q, qs => Dot(dout, Run(qs, k, v, null).Out)), r.DQ);
        AssertClose(NumericGradient(k, ks => Dot(dout, Run(q, ks, v, null).Out)), r.DK);
        AssertClose(NumericGradient(v, vs => Dot(dout, Run(q, k, vs, null).Out)), r.DV);
        // The last query sees keys t-3..t-1 only: moving the first key changes nothing there.
        var moved = (double[])k.Clone();
        moved[0] += 10;
        Assert.Equal(r.Out[^d..], Run(q, moved, v, null).Out[^d..]);
        // A window of one: each query sees only its own key, so its output is that value row.
        var self = CpuReference.Attention(q, k, v, null, b, t, hq, hkv, d, window: 1);
        Assert.Equal(v[(3 * d)..(4 * d)], self.Out[(3 * hq * d)..(3 * hq * d + d)]);
        // A window as long as the sequence is plain causal attention.
        Assert.Equal(CpuReference.Attention(q, k, v, null, b, t, hq, hkv, d).Out, CpuReference.Attention(q, k, v, null, b, t, hq, hkv, d, window: t).Out);
    }

    [Fact]
    public void Cross_entropy_gradient_matches_finite_differences()
    {
        var rng = new Random(5);
        const int rows = 3, dim = 4, vocab = 7;
        var hidden = Rand(rng, rows * dim);
        var weight = Rand(rng, vocab * dim);
        int[] targets = [2, -100, 6];
        var (loss, dh) = CpuReference.LmHeadCrossEntropy(hidden, weight, targets, rows, dim, vocab, 0.5);
        Assert.Equal(0, loss[1]);
        AssertClose(NumericGradient(hidden, h => 0.5 * CpuReference.LmHeadCrossEntropy(h, weight, targets, rows, dim, vocab, 0.5).Loss.Sum()), dh);
        // Uniform logits: the loss is log(vocab).
        var (uniform, _) = CpuReference.LmHeadCrossEntropy(new double[dim], weight, [0], 1, dim, vocab, 1);
        Assert.Equal(Math.Log(vocab), uniform[0], 12);
    }

    [Fact]
    public void AdamW_first_step_moves_each_weight_by_about_lr()
    {
        double[] p = [1.0, -2.0], g = [0.5, -3.0], m = [0, 0], v = [0, 0];
        CpuReference.AdamW(p, g, m, v, step: 1, lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradScale: 1);
        // Bias-corrected m/sqrt(v) is sign(g) on the first step; decay multiplies by (1 - lr*wd) first.
        Assert.Equal(1.0 * (1 - 0.001) - 0.1, p[0], 6);
        Assert.Equal(-2.0 * (1 - 0.001) + 0.1, p[1], 6);
        Assert.Equal(0.05, m[0], 12);
        Assert.Equal(0.001 * 9, v[1], 12);
    }
}
