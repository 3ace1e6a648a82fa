using FineTune.Engine.Lora;

namespace FineTune.Engine.Tests;

/// <summary>Central differences of a loss against the analytic gradients held in LoRA tensors.</summary>
internal static class FiniteDifferences
{
    /// <summary>
    /// Perturbs every value of <paramref name="tensors"/> by ±<paramref name="eps"/>, compares
    /// (loss(+) − loss(−)) / 2eps with the tensor's <c>Grad</c> and returns the relative L2 error and
    /// the squared norm of the finite differences (to tell a vanished gradient from a matching one).
    /// </summary>
    public static (double Relative, double Norm2) Compare(IEnumerable<LoraTensor> tensors, Func<double> loss, float eps = 1e-2f)
    {
        double diff2 = 0, norm2 = 0;
        foreach (var t in tensors)
            for (var i = 0; i < t.Value.Length; i++)
            {
                var keep = t.Value[i];
                t.Value[i] = keep + eps;
                var up = loss();
                t.Value[i] = keep - eps;
                var down = loss();
                t.Value[i] = keep;
                var fd = (up - down) / (2 * eps);
                diff2 += (fd - t.Grad[i]) * (fd - t.Grad[i]);
                norm2 += fd * fd;
            }
        return (Math.Sqrt(diff2 / norm2), norm2);
    }
}
