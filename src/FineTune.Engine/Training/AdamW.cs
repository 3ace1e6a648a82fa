using FineTune.Engine.Lora;

namespace FineTune.Engine.Training;

/// <summary>
/// AdamW with PyTorch's semantics (<c>torch.optim.AdamW</c>, non-amsgrad): decoupled weight decay
/// p ← p·(1 − lr·wd), then p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// </summary>
public sealed class AdamW(double beta1, double beta2, double epsilon, double weightDecay)
{
    /// <summary>Applies step <paramref name="t"/> (1-based) with learning rate <paramref name="lr"/> to every tensor.</summary>
    public void Step(IReadOnlyList<LoraTensor> tensors, int t, double lr)
    {
        var bc1 = 1 - Math.Pow(beta1, t);
        var bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(beta2, t));
        var stepSize = (float)(lr / bc1);
        var decay = (float)(1 - lr * weightDecay);
        float b1 = (float)beta1, b2 = (float)beta2, eps = (float)epsilon;
        Parallel.ForEach(tensors, tensor =>
        {
            var p = tensor.Value;
            var g = tensor.Grad;
            var m = tensor.M;
            var v = tensor.V;
            for (var i = 0; i < p.Length; i++)
            {
                p[i] *= decay;
                m[i] = m[i] * b1 + (1 - b1) * g[i];
                v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
                p[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / bc2Sqrt + eps);
            }
        });
    }

    /// <summary>The global L2 norm of all gradients, summed in a fixed order in double precision.</summary>
    public static double GradNorm(IReadOnlyList<LoraTensor> tensors)
    {
        var sums = new double[tensors.Count];
        Parallel.For(0, tensors.Count, i =>
        {
            var s = 0.0;
            foreach (var x in tensors[i].Grad) s += (double)x * x;
            sums[i] = s;
        });
        return Math.Sqrt(sums.Sum());
    }

    /// <summary>Scales gradients so their norm is at most <paramref name="maxNorm"/> (as torch.nn.utils.clip_grad_norm_).</summary>
    public static void Clip(IReadOnlyList<LoraTensor> tensors, double norm, double maxNorm)
    {
        if (maxNorm <= 0) return;
        var coef = maxNorm / (norm + 1e-6);
        if (coef >= 1) return;
        var c = (float)coef;
        foreach (var t in tensors)
            System.Numerics.Tensors.TensorPrimitives.Multiply(t.Grad, c, t.Grad);
    }
}
