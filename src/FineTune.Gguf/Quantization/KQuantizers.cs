using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FineTune.Gguf.Quantization;

/// <summary>
/// The 256-element super-block formats (Q4_K, Q5_K, Q6_K) as ggml's reference quantizers compute
/// them without an importance matrix. Every float operation keeps ggml's order and single
/// precision, because the chosen scales and levels depend on exact rounding.
/// </summary>
internal static class KQuantizers
{
    public const int QK_K = 256;
    private const float GroupMaxEps = 1e-15f;

    /// <summary>
    /// ggml's <c>nearest_int</c>: adding 1.5·2^23 puts the rounded integer in the low mantissa bits
    /// (round-half-to-even in the FPU), which differs from Math.Round only on exact halves.
    /// </summary>
    public static int NearestInt(float fval)
    {
        var val = fval + 12582912f;
        var i = BitConverter.SingleToInt32Bits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    public static void Q4_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[QK_K];
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[QK_K / 32];
        Span<float> scales = stackalloc float[QK_K / 32];
        var nb = x.Length / QK_K;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK_K, QK_K);
            var yb = y.Slice(i * 144, 144);
            var sc = yb.Slice(4, 12);
            var qs = yb.Slice(16, 128);
            SubBlockScalesWithMins(xb, 15, -1f, 0.1f, 20, L, laux, weights, scales, mins, out var maxScale, out var maxMin);
            PackScalesAndMins(sc, scales, mins, maxScale, maxMin);
            var d = HalfBits.FromFloat(maxScale / 63f);
            var dmin = HalfBits.FromFloat(maxMin / 63f);
            BinaryPrimitives.WriteUInt16LittleEndian(yb, d);
            BinaryPrimitives.WriteUInt16LittleEndian(yb[2..], dmin);
            Requantize(xb, sc, HalfBits.ToFloat(d), HalfBits.ToFloat(dmin), 15, L);
            for (int j = 0, q = 0; j < QK_K; j += 64, q += 32)
                for (var l = 0; l < 32; l++) qs[q + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
        }
    }

    public static void Q5_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[QK_K];
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[QK_K / 32];
        Span<float> scales = stackalloc float[QK_K / 32];
        var nb = x.Length / QK_K;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK_K, QK_K);
            var yb = y.Slice(i * 176, 176);
            var sc = yb.Slice(4, 12);
            var qh = yb.Slice(16, 32);
            var ql = yb.Slice(48, 128);
            SubBlockScalesWithMins(xb, 31, -0.5f, 0.1f, 15, L, laux, weights, scales, mins, out var maxScale, out var maxMin);
            PackScalesAndMins(sc, scales, mins, maxScale, maxMin);
            var d = HalfBits.FromFloat(maxScale / 63f);
            var dmin = HalfBits.FromFloat(maxMin / 63f);
            BinaryPrimitives.WriteUInt16LittleEndian(yb, d);
            BinaryPrimitives.WriteUInt16LittleEndian(yb[2..], dmin);
            Requantize(xb, sc, HalfBits.ToFloat(d), HalfBits.ToFloat(dmin), 31, L);
            qh.Clear();
            byte m1 = 1, m2 = 2;
            for (int n = 0, q = 0; n < QK_K; n += 64, q += 32)
            {
                for (var j = 0; j < 32; j++)
                {
                    int l1 = L[n + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                    int l2 = L[n + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                    ql[q + j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }

    public static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[QK_K];
        Span<float> scales = stackalloc float[QK_K / 16];
        var nb = x.Length / QK_K;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK_K, QK_K);
            var yb = y.Slice(i * 210, 210);
            var ql = yb[..128];
            var qh = yb.Slice(128, 64);
            var sc = yb.Slice(192, 16);
            float maxScale = 0, maxAbsScale = 0;
            if (Vector256.IsHardwareAccelerated) KQuantLanes.SignedScales16(xb, 32, L, scales);
            for (var ib = 0; ib < QK_K / 16; ib++)
            {
                var scale = Vector256.IsHardwareAccelerated ? scales[ib] : MakeQxQuants(16, 32, xb.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
                scales[ib] = scale;
                var abs = MathF.Abs(scale);
                if (abs > maxAbsScale)
                {
                    maxAbsScale = abs;
                    maxScale = scale;
                }
            }
            if (maxAbsScale < GroupMaxEps)
            {
                yb.Clear();
                continue;
            }
            var iscale = -128f / maxScale;
            var d = HalfBits.FromFloat(1 / iscale);
            BinaryPrimitives.WriteUInt16LittleEndian(yb[208..], d);
            for (var ib = 0; ib < QK_K / 16; ib++) sc[ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            var df = HalfBits.ToFloat(d);
            for (var j = 0; j < QK_K / 16; j++)
            {
                var dj = df * (sbyte)sc[j];
                if (dj == 0) continue;
                if (Vector256.IsHardwareAccelerated)
                {
                    KQuantLanes.RequantizeSigned16(xb, j, dj, L);
                    continue;
                }
                for (var ii = 0; ii < 16; ii++)
                {
                    var l = NearestInt(xb[16 * j + ii] / dj);
                    l = Math.Max(-32, Math.Min(31, l));
                    L[16 * j + ii] = (sbyte)(l + 32);
                }
            }
            for (int j = 0, qlo = 0, qho = 0; j < QK_K; j += 128, qlo += 64, qho += 32)
            {
                for (var l = 0; l < 32; l++)
                {
                    var q1 = (byte)(L[j + l] & 0xF);
                    var q2 = (byte)(L[j + l + 32] & 0xF);
                    var q3 = (byte)(L[j + l + 64] & 0xF);
                    var q4 = (byte)(L[j + l + 96] & 0xF);
                    ql[qlo + l] = (byte)(q1 | (q3 << 4));
                    ql[qlo + l + 32] = (byte)(q2 | (q4 << 4));
                    qh[qho + l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }

    /// <summary>Per 32-element sub-block: weights av_x + |x|, then make_qkx2_quants (shared by Q4_K and Q5_K).</summary>
    private static void SubBlockScalesWithMins(ReadOnlySpan<float> xb, int nmax, float rmin, float rdelta, int nstep,
        Span<byte> L, Span<byte> laux, Span<float> weights, Span<float> scales, Span<float> mins, out float maxScale, out float maxMin)
    {
        maxScale = 0;
        maxMin = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            KQuantLanes.SubBlockScalesWithMins(xb, nmax, rmin, rdelta, nstep, L, scales, mins);
            for (var j = 0; j < QK_K / 32; j++)
            {
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            return;
        }
        for (var j = 0; j < QK_K / 32; j++)
        {
            var xs = xb.Slice(32 * j, 32);
            var sumX2 = 0f;
            for (var l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            var avX = MathF.Sqrt(sumX2 / 32);
            for (var l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, rmin, rdelta, nstep);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
    }

    /// <summary>6-bit scales and mins packed into 12 bytes (the layout get_scale_min_k4 reads).</summary>
    private static void PackScalesAndMins(Span<byte> sc, ReadOnlySpan<float> scales, ReadOnlySpan<float> mins, float maxScale, float maxMin)
    {
        var invScale = maxScale > 0 ? 63f / maxScale : 0f;
        var invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (var j = 0; j < QK_K / 32; j++)
        {
            var ls = (byte)NearestInt(invScale * scales[j]);
            var lm = (byte)NearestInt(invMin * mins[j]);
            ls = Math.Min((byte)63, ls);
            lm = Math.Min((byte)63, lm);
            if (j < 4)
            {
                sc[j] = ls;
                sc[j + 4] = lm;
            }
            else
            {
                sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (byte)((ls >> 4) << 6);
                sc[j] |= (byte)((lm >> 4) << 6);
            }
        }
    }

    /// <summary>Second pass: levels recomputed from the stored (rounded) scales and mins.</summary>
    private static void Requantize(ReadOnlySpan<float> xb, ReadOnlySpan<byte> sc, float d, float dmin, int nmax, Span<byte> L)
    {
        for (var j = 0; j < QK_K / 32; j++)
        {
            GetScaleMinK4(j, sc, out var s, out var m);
            var dj = d * s;
            if (dj == 0) continue;
            var dm = dmin * m;
            if (Vector256.IsHardwareAccelerated)
            {
                KQuantLanes.Requantize(xb, j, dj, dm, nmax, L);
                continue;
            }
            for (var ii = 0; ii < 32; ii++)
            {
                var l = NearestInt((xb[32 * j + ii] + dm) / dj);
                l = Math.Max(0, Math.Min(nmax, l));
                L[32 * j + ii] = (byte)l;
            }
        }
    }

    private static void GetScaleMinK4(int j, ReadOnlySpan<byte> q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63);
            m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }

    private static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep)
    {
        var min = x[0];
        var max = x[0];
        var sumW = weights[0];
        var sumX = sumW * x[0];
        for (var i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            var w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        var iscale = nmax / (max - min);
        var scale = 1 / iscale;
        var bestError = 0f;
        for (var i = 0; i < n; i++)
        {
            var l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            var diff = scale * L[i] + min - x[i];
            diff *= diff;
            bestError += weights[i] * diff;
        }
        if (n == 32 && Vector256.IsHardwareAccelerated)
        {
            SearchScales32(nmax, x, weights, L, rmin, rdelta, nstep, max, sumW, sumX, ref scale, ref min, bestError);
            theMin = -min;
            return scale;
        }
        for (var @is = 0; @is <= nstep; @is++)
        {
            iscale = (rmin + rdelta * @is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (var i = 0; i < n; i++)
            {
                var l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                laux[i] = (byte)l;
                var w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * x[i];
            }
            var D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                var thisScale = (sumW * sumXl - sumX * sumL) / D;
                var thisMin = (sumL2 * sumX - sumL * sumXl) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                var curError = 0f;
                for (var i = 0; i < n; i++)
                {
                    var diff = thisScale * laux[i] + thisMin - x[i];
                    diff *= diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    laux[..n].CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// The scale search of <see cref="MakeQkx2Quants"/> for 32 values, with every per-value product
    /// computed eight lanes at a time and only the sums left sequential: each sum keeps ggml's
    /// left-to-right order, so the chosen scale, min and levels are the same to the bit.
    /// </summary>
    private static void SearchScales32(int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L,
        float rmin, float rdelta, int nstep, float max, float sumW, float sumX, ref float scale, ref float min, float bestError)
    {
        Span<float> wl = stackalloc float[32];
        Span<float> wll = stackalloc float[32];
        Span<float> wlx = stackalloc float[32];
        Span<float> err = stackalloc float[32];
        Span<float> lf = stackalloc float[32];
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var wr = ref MemoryMarshal.GetReference(weights);
        var magic = Vector256.Create(12582912f);
        var mantissa = Vector256.Create(0x007fffff);
        var bias = Vector256.Create(0x00400000);
        var top = Vector256.Create(nmax);
        for (var @is = 0; @is <= nstep; @is++)
        {
            // As in ggml, each step scales from the best min found so far.
            var iscale = Vector256.Create((rmin + rdelta * @is + nmax) / (max - min));
            var minV = Vector256.Create(min);
            for (var c = 0; c < 32; c += 8)
            {
                var xv = Vector256.LoadUnsafe(ref xr, (nuint)c);
                var wv = Vector256.LoadUnsafe(ref wr, (nuint)c);
                // ggml's nearest_int: the integer lands in the mantissa after adding 1.5 * 2^23.
                var l = ((iscale * (xv - minV) + magic).AsInt32() & mantissa) - bias;
                l = Vector256.Min(Vector256.Max(l, Vector256<int>.Zero), top);
                var lv = Vector256.ConvertToSingle(l);
                lv.StoreUnsafe(ref MemoryMarshal.GetReference(lf), (nuint)c);
                var w = wv * lv;
                w.StoreUnsafe(ref MemoryMarshal.GetReference(wl), (nuint)c);
                (w * lv).StoreUnsafe(ref MemoryMarshal.GetReference(wll), (nuint)c);
                (w * xv).StoreUnsafe(ref MemoryMarshal.GetReference(wlx), (nuint)c);
            }
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (var i = 0; i < 32; i++)
            {
                sumL += wl[i];
                sumL2 += wll[i];
                sumXl += wlx[i];
            }
            var D = sumW * sumL2 - sumL * sumL;
            if (D <= 0) continue;
            var thisScale = (sumW * sumXl - sumX * sumL) / D;
            var thisMin = (sumL2 * sumX - sumL * sumXl) / D;
            if (thisMin > 0)
            {
                thisMin = 0;
                thisScale = sumXl / sumL2;
            }
            var ts = Vector256.Create(thisScale);
            var tm = Vector256.Create(thisMin);
            for (var c = 0; c < 32; c += 8)
            {
                var diff = ts * Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(lf), (nuint)c) + tm - Vector256.LoadUnsafe(ref xr, (nuint)c);
                (Vector256.LoadUnsafe(ref wr, (nuint)c) * (diff * diff)).StoreUnsafe(ref MemoryMarshal.GetReference(err), (nuint)c);
            }
            var curError = 0f;
            for (var i = 0; i < 32; i++) curError += err[i];
            if (curError < bestError)
            {
                for (var i = 0; i < 32; i++) L[i] = (byte)lf[i];
                bestError = curError;
                scale = thisScale;
                min = thisMin;
            }
        }
    }

    /// <summary>
    /// The scale search of <see cref="MakeQxQuants"/> for 16 values: per-value products eight lanes at
    /// a time, sums in ggml's order, so the result is the same to the bit.
    /// </summary>
    private static float SearchSignedScales16(int nmax, ReadOnlySpan<float> x, Span<sbyte> L, float max, float scale, float best)
    {
        Span<float> lx = stackalloc float[16];
        Span<float> l2 = stackalloc float[16];
        Span<int> levels = stackalloc int[16];
        ref var xr = ref MemoryMarshal.GetReference(x);
        var magic = Vector256.Create(12582912f);
        var mantissa = Vector256.Create(0x007fffff);
        var bias = Vector256.Create(0x00400000);
        var low = Vector256.Create(-nmax);
        var high = Vector256.Create(nmax - 1);
        for (var @is = -9; @is <= 9; @is++)
        {
            if (@is == 0) continue;
            var iscale = Vector256.Create(-(nmax + 0.1f * @is) / max);
            for (var c = 0; c < 16; c += 8)
            {
                var xv = Vector256.LoadUnsafe(ref xr, (nuint)c);
                var l = Vector256.Min(Vector256.Max(((iscale * xv + magic).AsInt32() & mantissa) - bias, low), high);
                l.StoreUnsafe(ref MemoryMarshal.GetReference(levels), (nuint)c);
                var lv = Vector256.ConvertToSingle(l);
                var w = xv * xv;
                (w * xv * lv).StoreUnsafe(ref MemoryMarshal.GetReference(lx), (nuint)c);
                (w * lv * lv).StoreUnsafe(ref MemoryMarshal.GetReference(l2), (nuint)c);
            }
            float sumlx = 0, suml2 = 0;
            for (var i = 0; i < 16; i++)
            {
                sumlx += lx[i];
                suml2 += l2[i];
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (var i = 0; i < 16; i++) L[i] = (sbyte)(nmax + levels[i]);
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>make_qx_quants with rmse_type 1 and no importance weights (weights x²), as Q6_K uses it.</summary>
    private static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0, amax = 0;
        for (var i = 0; i < n; i++)
        {
            var ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        var iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (var i = 0; i < n; i++)
        {
            var l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            var w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        var scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        var best = scale * sumlx;
        if (n == 16 && Vector256.IsHardwareAccelerated)
            return SearchSignedScales16(nmax, x, L, max, scale, best);
        for (var @is = -9; @is <= 9; @is++)
        {
            if (@is == 0) continue;
            iscale = -(nmax + 0.1f * @is) / max;
            sumlx = suml2 = 0;
            for (var i = 0; i < n; i++)
            {
                var l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                var w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (var i = 0; i < n; i++)
                {
                    var l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }
}
