namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// Straightforward float64 loops for every CUDA kernel: the oracle the kernel checks compare
/// against. Written for clarity, not speed; layouts are those of <see cref="Kernels.CudaKernels"/>.
/// </summary>
public static class CpuReference
{
    /// <summary>C[M,N] = op(A) · op(B) + beta · C with A [M,K] (or [K,M] transposed), B [K,N] (or [N,K]).</summary>
    public static double[] Gemm(double[] a, bool transA, double[] b, bool transB, int m, int n, int k, double[]? c = null, double beta = 0)
    {
        var result = new double[(long)m * n];
        Parallel.For(0, m, i =>
        {
            for (var j = 0; j < n; j++)
            {
                double s = 0;
                for (var p = 0; p < k; p++)
                    s += (transA ? a[(long)p * m + i] : a[(long)i * k + p]) * (transB ? b[(long)j * k + p] : b[(long)p * n + j]);
                result[(long)i * n + j] = s + (c is null ? 0 : beta * c[(long)i * n + j]);
            }
        });
        return result;
    }

    /// <summary>RMSNorm forward: y and rstd per row.</summary>
    public static (double[] Y, double[] Rstd) RmsNorm(double[] x, double[] w, int rows, int dim, double eps)
    {
        var y = new double[x.Length];
        var rstd = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            double ss = 0;
            for (var i = 0; i < dim; i++)
                ss += x[r * dim + i] * x[r * dim + i];
            rstd[r] = 1 / Math.Sqrt(ss / dim + eps);
            for (var i = 0; i < dim; i++)
                y[r * dim + i] = x[r * dim + i] * rstd[r] * w[i];
        }
        return (y, rstd);
    }

    /// <summary>RMSNorm input gradient, by the chain rule written out per element.</summary>
    public static double[] RmsNormBackward(double[] dy, double[] x, double[] w, int rows, int dim, double eps)
    {
        var dx = new double[x.Length];
        for (var r = 0; r < rows; r++)
        {
            double ss = 0, dot = 0;
            for (var i = 0; i < dim; i++)
            {
                ss += x[r * dim + i] * x[r * dim + i];
                dot += dy[r * dim + i] * w[i] * x[r * dim + i];
            }
            var rs = 1 / Math.Sqrt(ss / dim + eps);
            for (var j = 0; j < dim; j++)
                dx[r * dim + j] = rs * w[j] * dy[r * dim + j] - x[r * dim + j] * rs * rs * rs / dim * dot;
        }
        return dx;
    }

    /// <summary>Rotary embedding (rotate_half pairs), forward or inverse.</summary>
    public static double[] Rope(double[] x, int[] positions, float[] invFreq, int rows, int heads, int headDim, bool inverse)
    {
        var y = (double[])x.Clone();
        var half = headDim / 2;
        for (var r = 0; r < rows; r++)
            for (var h = 0; h < heads; h++)
                for (var i = 0; i < half; i++)
                {
                    var angle = positions[r] * (double)invFreq[i] * (inverse ? -1 : 1);
                    var baseIndex = ((long)r * heads + h) * headDim;
                    var a = x[baseIndex + i];
                    var b = x[baseIndex + i + half];
                    y[baseIndex + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                    y[baseIndex + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
                }
        return y;
    }

    private static double Sigmoid(double g) => 1 / (1 + Math.Exp(-g));

    /// <summary>silu(g) * u.</summary>
    public static double[] SwiGlu(double[] gate, double[] up)
    {
        var h = new double[gate.Length];
        for (var i = 0; i < h.Length; i++)
            h[i] = gate[i] * Sigmoid(gate[i]) * up[i];
        return h;
    }

    /// <summary>Gradients of silu(g) * u.</summary>
    public static (double[] DGate, double[] DUp) SwiGluBackward(double[] dh, double[] gate, double[] up)
    {
        var dg = new double[gate.Length];
        var du = new double[gate.Length];
        for (var i = 0; i < dg.Length; i++)
        {
            var s = Sigmoid(gate[i]);
            du[i] = dh[i] * gate[i] * s;
            dg[i] = dh[i] * up[i] * (s + gate[i] * s * (1 - s));
        }
        return (dg, du);
    }

    private const double GeluBeta = 0.7978845608028654, GeluKappa = 0.044715;

    /// <summary>gelu_tanh(g) * u (GeGLU, transformers' gelu_pytorch_tanh).</summary>
    public static double[] GeGlu(double[] gate, double[] up)
    {
        var h = new double[gate.Length];
        for (var i = 0; i < h.Length; i++)
        {
            var g = gate[i];
            h[i] = 0.5 * g * (1 + Math.Tanh(GeluBeta * (g + GeluKappa * g * g * g))) * up[i];
        }
        return h;
    }

    /// <summary>Gradients of gelu_tanh(g) * u.</summary>
    public static (double[] DGate, double[] DUp) GeGluBackward(double[] dh, double[] gate, double[] up)
    {
        var dg = new double[gate.Length];
        var du = new double[gate.Length];
        for (var i = 0; i < dg.Length; i++)
        {
            var g = gate[i];
            var t = Math.Tanh(GeluBeta * (g + GeluKappa * g * g * g));
            du[i] = dh[i] * 0.5 * g * (1 + t);
            dg[i] = dh[i] * up[i] * (0.5 * (1 + t) + 0.5 * g * (1 - t * t) * GeluBeta * (1 + 3 * GeluKappa * g * g));
        }
        return (dg, du);
    }

    /// <summary>
    /// Causal GQA attention with an explicit softmax: out [B,T,Hq,D], lse [B,Hq,T], and, given dout,
    /// dq, dk, dv by the textbook backward of softmax(QKᵀ·scale)·V. Query t sees keys
    /// t − window + 1 .. t when <paramref name="window"/> is positive (a sliding-window layer), all
    /// keys up to t otherwise; <paramref name="scale"/> defaults to 1/sqrt(dim).
    /// </summary>
    public static AttentionResult Attention(double[] q, double[] k, double[] v, double[]? dout, int batch, int seq, int hq, int hkv, int dim,
        int window = 0, double? scale = null)
    {
        var factor = scale ?? 1 / Math.Sqrt(dim);
        var group = hq / hkv;
        var o = new double[q.Length];
        var lse = new double[(long)batch * hq * seq];
        var dq = new double[q.Length];
        var dk = new double[k.Length];
        var dv = new double[v.Length];
        long Qi(int b, int t, int h) => (((long)b * seq + t) * hq + h) * dim;
        long Ki(int b, int t, int h) => (((long)b * seq + t) * hkv + h) * dim;

        // Each (b, h) is independent; dk/dv of a kv head sum over its group, so parallelise over (b, kv head).
        Parallel.For(0, batch * hkv, bk =>
        {
            var b = bk / hkv;
            var kh = bk % hkv;
            var p = new double[seq];
            var dp = new double[seq];
            for (var h = kh * group; h < (kh + 1) * group; h++)
                for (var t = 0; t < seq; t++)
                {
                    var max = double.NegativeInfinity;
                    var first = window > 0 ? Math.Max(0, t - window + 1) : 0;
                    Array.Clear(p);
                    for (var s = first; s <= t; s++)
                    {
                        double dot = 0;
                        for (var d = 0; d < dim; d++)
                            dot += q[Qi(b, t, h) + d] * k[Ki(b, s, kh) + d];
                        p[s] = dot * factor;
                        max = Math.Max(max, p[s]);
                    }
                    double sum = 0;
                    for (var s = first; s <= t; s++)
                    {
                        p[s] = Math.Exp(p[s] - max);
                        sum += p[s];
                    }
                    lse[((long)b * hq + h) * seq + t] = max + Math.Log(sum);
                    for (var s = first; s <= t; s++)
                        p[s] /= sum;
                    for (var d = 0; d < dim; d++)
                    {
                        double acc = 0;
                        for (var s = first; s <= t; s++)
                            acc += p[s] * v[Ki(b, s, kh) + d];
                        o[Qi(b, t, h) + d] = acc;
                    }
                    if (dout is null)
                        continue;
                    // dP = dO·Vᵀ; dS = P ∘ (dP − Σ P∘dP); dQ = scale·dS·K; dK += scale·dSᵀ·Q; dV += Pᵀ·dO.
                    double rowDot = 0;
                    for (var s = first; s <= t; s++)
                    {
                        double acc = 0;
                        for (var d = 0; d < dim; d++)
                            acc += dout[Qi(b, t, h) + d] * v[Ki(b, s, kh) + d];
                        dp[s] = acc;
                        rowDot += p[s] * acc;
                    }
                    for (var s = first; s <= t; s++)
                    {
                        var ds = p[s] * (dp[s] - rowDot) * factor;
                        for (var d = 0; d < dim; d++)
                        {
                            dq[Qi(b, t, h) + d] += ds * k[Ki(b, s, kh) + d];
                            dk[Ki(b, s, kh) + d] += ds * q[Qi(b, t, h) + d];
                            dv[Ki(b, s, kh) + d] += p[s] * dout[Qi(b, t, h) + d];
                        }
                    }
                }
        });
        return new AttentionResult(o, lse, dq, dk, dv);
    }

    /// <summary>Outputs of <see cref="Attention"/>.</summary>
    public sealed record AttentionResult(double[] Out, double[] Lse, double[] DQ, double[] DK, double[] DV);

    /// <summary>
    /// Mean-free cross-entropy of the full logits h·Wᵀ per row (0 for negative targets) and
    /// dHidden = gradScale · (softmax − onehot)·W.
    /// </summary>
    public static (double[] Loss, double[] DHidden) LmHeadCrossEntropy(double[] hidden, double[] weight, int[] targets, int rows, int dim, int vocab, double gradScale)
    {
        var loss = new double[rows];
        var dh = new double[(long)rows * dim];
        Parallel.For(0, rows, r =>
        {
            if (targets[r] < 0)
                return;
            var logits = new double[vocab];
            var max = double.NegativeInfinity;
            for (var v = 0; v < vocab; v++)
            {
                double s = 0;
                for (var d = 0; d < dim; d++)
                    s += hidden[(long)r * dim + d] * weight[(long)v * dim + d];
                logits[v] = s;
                max = Math.Max(max, s);
            }
            double sum = 0;
            for (var v = 0; v < vocab; v++)
                sum += Math.Exp(logits[v] - max);
            loss[r] = max + Math.Log(sum) - logits[targets[r]];
            for (var v = 0; v < vocab; v++)
            {
                var g = Math.Exp(logits[v] - max) / sum - (v == targets[r] ? 1 : 0);
                for (var d = 0; d < dim; d++)
                    dh[(long)r * dim + d] += gradScale * g * weight[(long)v * dim + d];
            }
        });
        return (loss, dh);
    }

    /// <summary>One AdamW step in float64 (PyTorch's formula), in place.</summary>
    public static void AdamW(double[] p, double[] g, double[] m, double[] v, int step, double lr, double beta1, double beta2, double eps, double weightDecay, double gradScale)
    {
        var bc1 = 1 - Math.Pow(beta1, step);
        var bc2 = 1 - Math.Pow(beta2, step);
        for (var i = 0; i < p.Length; i++)
        {
            var gi = g[i] * gradScale;
            p[i] *= 1 - lr * weightDecay;
            m[i] = beta1 * m[i] + (1 - beta1) * gi;
            v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
            p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
        }
    }
}
