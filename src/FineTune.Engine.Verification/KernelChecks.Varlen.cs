using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Verification;

public sealed partial class KernelChecks
{
    /// <summary>
    /// The single attention launch over sequences of <paramref name="lengths"/> laid end to end, forward
    /// and backward: against float64 attention of each sequence alone (so nothing crosses examples), and
    /// byte for byte against one uniform launch per sequence (what training did before).
    /// </summary>
    private KernelCheckResult AttentionVarlen(string name, int seed, int[] lengths, int hq, int hkv, int dim, bool rows64 = false, int window = 0, float? scale = null, bool hopper = false)
    {
        var rng = new Random(seed);
        var layout = VarlenAttention.For(lengths);
        long rows = layout.Rows, qn = rows * hq * dim, kn = rows * hkv * dim;
        var q = Bf16.Random(rng, qn, 1.5f);
        var k = Bf16.Random(rng, kn, 1.5f);
        var v = Bf16.Random(rng, kn);
        var dout = Bf16.Random(rng, qn);
        DeviceBuffer dq = Upload(q), dk = Upload(k), dv = Upload(v), ddo = Upload(dout);
        var tables = Alloc(VarlenAttention.BytesFor(rows));
        var device = layout.Upload(tables.Pointer, (_, data) => tables.Upload<int>(data));
        var heads = new AttentionShape(layout.Sequences, layout.Longest, hq, hkv, dim) { Window = window, SoftmaxScale = scale };
        var o = Alloc(qn * 2);
        var lse = Alloc(rows * hq * 4);
        var delta = Alloc(rows * hq * 4);
        DeviceBuffer gq = Alloc(qn * 2), gk = Alloc(kn * 2), gv = Alloc(kn * 2);
        var (forwardTiling, backwardTiling) = WithoutHopper(
            hopper ? AttentionForwardTiling.Hopper : rows64 ? AttentionForwardTiling.Rows64 : AttentionForwardTiling.Auto,
            hopper ? AttentionBackwardTiling.Hopper : rows64 ? AttentionBackwardTiling.Rows64 : AttentionBackwardTiling.Auto, dim);
        void Tiled(Action launch)
        {
            Kernels.ForwardTiling = forwardTiling;
            Kernels.BackwardTiling = backwardTiling;
            try { launch(); }
            finally
            {
                Kernels.ForwardTiling = AttentionForwardTiling.Auto;
                Kernels.BackwardTiling = AttentionBackwardTiling.Auto;
            }
        }
        var (fwd, det1) = Twice(() => { }, () => Tiled(() => Kernels.AttentionForwardVarlen(o.Pointer, lse.Pointer, dq.Pointer, dk.Pointer, dv.Pointer, heads, device)), o, lse);
        var (bwd, det2) = Twice(() => { }, () => Tiled(() => Kernels.AttentionBackwardVarlen(gq.Pointer, gk.Pointer, gv.Pointer, dq.Pointer, dk.Pointer, dv.Pointer,
            o.Pointer, ddo.Pointer, lse.Pointer, delta.Pointer, heads, device)), gq, gk, gv);

        // The same inputs, one uniform launch per sequence (batch 1) at its offsets.
        var outputs = new[] { o, lse, gq, gk, gv };
        foreach (var buffer in outputs) buffer.FillBytes(0xFF);
        Tiled(() =>
        {
            for (var i = 0; i < layout.Sequences; i++)
            {
                ulong st = (ulong)layout.Starts[i], len = (ulong)(layout.Starts[i + 1] - layout.Starts[i]);
                var one = new AttentionShape(1, (int)len, hq, hkv, dim) { Window = window, SoftmaxScale = scale };
                ulong qo = st * (ulong)(hq * dim) * 2, ko = st * (ulong)(hkv * dim) * 2, so = st * (ulong)hq * 4;
                Kernels.AttentionForward(o.Pointer + qo, lse.Pointer + so, dq.Pointer + qo, dk.Pointer + ko, dv.Pointer + ko, one);
                Kernels.AttentionBackward(gq.Pointer + qo, gk.Pointer + ko, gv.Pointer + ko, dq.Pointer + qo, dk.Pointer + ko, dv.Pointer + ko, o.Pointer + qo, ddo.Pointer + qo,
                    lse.Pointer + so, delta.Pointer + so, one);
            }
        });
        Device.Synchronize();
        var perSequence = outputs.Select(b => b.Download<byte>()).ToArray();
        var single = fwd.Concat(bwd).ToArray();
        var sameBytes = single.Zip(perSequence).All(p => p.First.AsSpan().SequenceEqual(p.Second));

        // float64, each sequence alone, laid out as the kernels lay it out.
        double[] rOut = new double[qn], rLse = new double[rows * hq], rDq = new double[qn], rDk = new double[kn], rDv = new double[kn];
        var qd = Bf16.ToDouble(q);
        var kd = Bf16.ToDouble(k);
        var vd = Bf16.ToDouble(v);
        var dd = Bf16.ToDouble(dout);
        for (var i = 0; i < layout.Sequences; i++)
        {
            int st = layout.Starts[i], len = layout.Starts[i + 1] - st;
            int qa = st * hq * dim, qc = len * hq * dim, ka = st * hkv * dim, kc = len * hkv * dim;
            var r = CpuReference.Attention(qd[qa..(qa + qc)], kd[ka..(ka + kc)], vd[ka..(ka + kc)], dd[qa..(qa + qc)], 1, len, hq, hkv, dim, window, scale);
            r.Out.CopyTo(rOut, qa);
            r.DQ.CopyTo(rDq, qa);
            r.DK.CopyTo(rDk, ka);
            r.DV.CopyTo(rDv, ka);
            r.Lse.CopyTo(rLse, st * hq);
        }
        return new KernelCheckResult(name, seed,
        [
            new("out", ErrorMetrics.Relative(AsBf16(fwd[0]), rOut), Bf16Tolerance),
            new("lse", ErrorMetrics.Relative(AsF32(fwd[1]), rLse), 1e-4),
            new("dq", ErrorMetrics.Relative(AsBf16(bwd[0]), rDq), Bf16GradTolerance),
            new("dk", ErrorMetrics.Relative(AsBf16(bwd[1]), rDk), Bf16GradTolerance),
            new("dv", ErrorMetrics.Relative(AsBf16(bwd[2]), rDv), Bf16GradTolerance),
            new("bytes unlike one launch per sequence (0 or 1)", sameBytes ? 0 : 1, 0),
        ], det1 && det2);
    }
}
