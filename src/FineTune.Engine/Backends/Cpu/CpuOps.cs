using System.Numerics.Tensors;

namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// Row-wise CPU kernels of a Llama block (RMSNorm, SwiGLU) and their backward passes. Rows are
/// processed in parallel; every reduction runs inside one row in a fixed order.
/// </summary>
public static class CpuOps
{
    /// <summary>y = x · rstd · w per row, rstd = 1/√(mean(x²) + eps), as Hugging Face's LlamaRMSNorm.</summary>
    public static void RmsNorm(IComputeBackend be, float[] x, float[] y, float[] rstd, float[] w, int rows, int dim, float eps)
    {
        be.For(rows, r =>
        {
            var xr = x.AsSpan(r * dim, dim);
            var yr = y.AsSpan(r * dim, dim);
            var inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / dim + eps);
            rstd[r] = inv;
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        });
    }

    /// <summary>sum = a + b (a residual connection), then y = RmsNorm(sum) as <see cref="RmsNorm"/>: one pass over each row while it is in cache.</summary>
    public static void AddRmsNorm(IComputeBackend be, float[] a, float[] b, float[] sum, float[] y, float[] rstd, float[] w, int rows, int dim, float eps)
    {
        be.For(rows, r =>
        {
            var xr = sum.AsSpan(r * dim, dim);
            TensorPrimitives.Add(a.AsSpan(r * dim, dim), b.AsSpan(r * dim, dim), xr);
            var yr = y.AsSpan(r * dim, dim);
            var inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / dim + eps);
            rstd[r] = inv;
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        });
    }

    /// <summary>sum = a + b row by row over the backend's threads.</summary>
    public static void Add(IComputeBackend be, float[] a, float[] b, float[] sum, int rows, int dim) =>
        be.For(rows, r => TensorPrimitives.Add(a.AsSpan(r * dim, dim), b.AsSpan(r * dim, dim), sum.AsSpan(r * dim, dim)));

    /// <summary>dx (+)= rstd · (dy·w − x̂ · mean(dy·w·x̂)), x̂ = x·rstd; the weight is frozen.</summary>
    public static void RmsNormBackward(IComputeBackend be, float[] dy, float[] x, float[] rstd, float[] w, float[] dx, int rows, int dim, bool accumulate)
    {
        be.For(rows, r =>
        {
            Span<float> g = dim <= 4096 ? stackalloc float[dim] : new float[dim];
            var xr = x.AsSpan(r * dim, dim);
            var dxr = dx.AsSpan(r * dim, dim);
            TensorPrimitives.Multiply(dy.AsSpan(r * dim, dim), w, g);
            var inv = rstd[r];
            var dot = TensorPrimitives.Dot(g, xr) * inv / dim;
            for (var i = 0; i < dim; i++)
            {
                var v = inv * (g[i] - xr[i] * inv * dot);
                dxr[i] = accumulate ? dxr[i] + v : v;
            }
        });
    }

    /// <summary>act = silu(gate) · up, silu(g) = g · sigmoid(g).</summary>
    public static void SwiGlu(IComputeBackend be, float[] gate, float[] up, float[] act, int rows, int dim)
    {
        be.For(rows, r =>
        {
            var g = gate.AsSpan(r * dim, dim);
            var y = act.AsSpan(r * dim, dim);
            TensorPrimitives.Sigmoid(g, y);
            TensorPrimitives.Multiply(y, g, y);
            TensorPrimitives.Multiply(y, up.AsSpan(r * dim, dim), y);
        });
    }

    /// <summary>Gradients of <see cref="SwiGlu"/> with respect to gate and up: dUp = dAct·silu(g), dGate = dAct·up·σ(g)·(1 + g·(1 − σ(g))).</summary>
    public static void SwiGluBackward(IComputeBackend be, float[] dAct, float[] gate, float[] up, float[] dGate, float[] dUp, int rows, int dim)
    {
        be.For(rows, r =>
        {
            Span<float> sig = dim <= 4096 ? stackalloc float[dim] : new float[dim];
            var g = gate.AsSpan(r * dim, dim);
            var da = dAct.AsSpan(r * dim, dim);
            var dg = dGate.AsSpan(r * dim, dim);
            var du = dUp.AsSpan(r * dim, dim);
            TensorPrimitives.Sigmoid(g, sig);
            TensorPrimitives.Multiply(g, sig, du);
            TensorPrimitives.Multiply(du, da, du);
            // dGate = ((((1 − σ)·g + 1)·σ)·up)·dAct, built in place.
            TensorPrimitives.Subtract(1f, sig, dg);
            TensorPrimitives.MultiplyAdd(dg, g, 1f, dg);
            TensorPrimitives.Multiply(dg, sig, dg);
            TensorPrimitives.Multiply(dg, up.AsSpan(r * dim, dim), dg);
            TensorPrimitives.Multiply(dg, da, dg);
        });
    }

    // PyTorch's gelu(approximate="tanh"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    private const float GeluBeta = 0.7978845608028654f, GeluKappa = 0.044715f;

    /// <summary>act = gelu_tanh(gate) · up (GeGLU, Gemma's MLP).</summary>
    public static void GeluTanhGlu(IComputeBackend be, float[] gate, float[] up, float[] act, int rows, int dim)
    {
        be.For(rows, r =>
        {
            var o = r * dim;
            for (var i = o; i < o + dim; i++)
            {
                var g = gate[i];
                var t = MathF.Tanh(GeluBeta * (g + GeluKappa * g * g * g));
                act[i] = 0.5f * g * (1f + t) * up[i];
            }
        });
    }

    /// <summary>Gradients of <see cref="GeluTanhGlu"/> with respect to gate and up.</summary>
    public static void GeluTanhGluBackward(IComputeBackend be, float[] dAct, float[] gate, float[] up, float[] dGate, float[] dUp, int rows, int dim)
    {
        be.For(rows, r =>
        {
            var o = r * dim;
            for (var i = o; i < o + dim; i++)
            {
                var g = gate[i];
                var t = MathF.Tanh(GeluBeta * (g + GeluKappa * g * g * g));
                var gelu = 0.5f * g * (1f + t);
                var dGelu = 0.5f * (1f + t) + 0.5f * g * (1f - t * t) * GeluBeta * (1f + 3f * GeluKappa * g * g);
                dUp[i] = dAct[i] * gelu;
                dGate[i] = dAct[i] * up[i] * dGelu;
            }
        });
    }

    /// <summary>The gated activation of <paramref name="c"/>'s MLP.</summary>
    public static void GatedActivation(IComputeBackend be, Model.ModelConfig c, float[] gate, float[] up, float[] act, int rows)
    {
        if (c.Activation == Model.GateActivation.GeluTanh) GeluTanhGlu(be, gate, up, act, rows, c.IntermediateSize);
        else SwiGlu(be, gate, up, act, rows, c.IntermediateSize);
    }

    /// <summary>Gradients of <see cref="GatedActivation"/>.</summary>
    public static void GatedActivationBackward(IComputeBackend be, Model.ModelConfig c, float[] dAct, float[] gate, float[] up, float[] dGate, float[] dUp, int rows)
    {
        if (c.Activation == Model.GateActivation.GeluTanh) GeluTanhGluBackward(be, dAct, gate, up, dGate, dUp, rows, c.IntermediateSize);
        else SwiGluBackward(be, dAct, gate, up, dGate, dUp, rows, c.IntermediateSize);
    }
}
