using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FineTune.Gguf.Quantization;

/// <summary>
/// The sub-block search of Q4_K and Q5_K (weights av_x + |x|, then make_qkx2_quants) for all eight
/// 32-value sub-blocks of a super-block at once: lane j of every vector works on sub-block j, so
/// each lane runs exactly ggml's scalar operations in ggml's order (every sum stays left to right
/// within its sub-block) and the scales, mins and levels are the same to the bit, while the eight
/// dependent sums that bound the one-sub-block-at-a-time search now advance together.
/// </summary>
internal static class KQuantLanes
{
    private const int Lanes = 8;
    private const int N = 32;

    /// <summary>
    /// Fills <paramref name="L"/> (256 levels), <paramref name="scales"/> and <paramref name="mins"/>
    /// (8 each, mins as the positive offset ggml stores) for the super-block <paramref name="xb"/>.
    /// </summary>
    [SkipLocalsInit]
    public static void SubBlockScalesWithMins(ReadOnlySpan<float> xb, int nmax, float rmin, float rdelta, int nstep,
        Span<byte> L, Span<float> scales, Span<float> mins)
    {
        Span<Vector256<float>> x = stackalloc Vector256<float>[N];
        Span<Vector256<float>> w = stackalloc Vector256<float>[N];
        Span<Vector256<float>> lf = stackalloc Vector256<float>[N];
        Span<Vector256<float>> best = stackalloc Vector256<float>[N];
        Span<float> t = MemoryMarshal.Cast<Vector256<float>, float>(x);
        for (var j = 0; j < Lanes; j++)
            for (var l = 0; l < N; l++) t[l * Lanes + j] = xb[N * j + l];

        var sumX2 = Vector256<float>.Zero;
        for (var l = 0; l < N; l++) sumX2 += x[l] * x[l];
        var avX = Vector256.Sqrt(sumX2 / Vector256.Create(32f));
        for (var l = 0; l < N; l++) w[l] = avX + Vector256.Abs(x[l]);

        var min = x[0];
        var max = x[0];
        var sumW = w[0];
        var sumX = sumW * x[0];
        for (var l = 1; l < N; l++)
        {
            min = Vector256.ConditionalSelect(Vector256.LessThan(x[l], min), x[l], min);
            max = Vector256.ConditionalSelect(Vector256.GreaterThan(x[l], max), x[l], max);
            sumW += w[l];
            sumX += w[l] * x[l];
        }
        min = Vector256.ConditionalSelect(Vector256.GreaterThan(min, Vector256<float>.Zero), Vector256<float>.Zero, min);
        // ggml returns early (scale 0, levels 0) where max == min; those lanes take no part below.
        var live = ~Vector256.Equals(max, min);

        var top = Vector256.Create((float)nmax);
        var iscale = top / (max - min);
        var scale = Vector256<float>.One / iscale;
        var bestError = Vector256<float>.Zero;
        for (var l = 0; l < N; l++)
        {
            var level = Level(iscale * (x[l] - min), nmax);
            best[l] = level;
            var diff = scale * level + min - x[l];
            diff *= diff;
            bestError += w[l] * diff;
        }
        for (var @is = 0; @is <= nstep; @is++)
        {
            // As in ggml, each step scales from the best min found so far.
            iscale = Vector256.Create(rmin + rdelta * @is + nmax) / (max - min);
            Vector256<float> sumL = default, sumL2 = default, sumXl = default;
            for (var l = 0; l < N; l++)
            {
                var level = Level(iscale * (x[l] - min), nmax);
                lf[l] = level;
                var wl = w[l] * level;
                sumL += wl;
                sumL2 += wl * level;
                sumXl += wl * x[l];
            }
            var d = sumW * sumL2 - sumL * sumL;
            var solvable = Vector256.GreaterThan(d, Vector256<float>.Zero) & live;
            if (solvable == Vector256<float>.Zero) continue;
            var thisScale = (sumW * sumXl - sumX * sumL) / d;
            var thisMin = (sumL2 * sumX - sumL * sumXl) / d;
            var positive = Vector256.GreaterThan(thisMin, Vector256<float>.Zero);
            thisMin = Vector256.ConditionalSelect(positive, Vector256<float>.Zero, thisMin);
            thisScale = Vector256.ConditionalSelect(positive, sumXl / sumL2, thisScale);
            var curError = Vector256<float>.Zero;
            for (var l = 0; l < N; l++)
            {
                var diff = thisScale * lf[l] + thisMin - x[l];
                curError += w[l] * (diff * diff);
            }
            var better = Vector256.LessThan(curError, bestError) & solvable;
            if (better == Vector256<float>.Zero) continue;
            for (var l = 0; l < N; l++) best[l] = Vector256.ConditionalSelect(better, lf[l], best[l]);
            bestError = Vector256.ConditionalSelect(better, curError, bestError);
            scale = Vector256.ConditionalSelect(better, thisScale, scale);
            min = Vector256.ConditionalSelect(better, thisMin, min);
        }
        scale = Vector256.ConditionalSelect(live, scale, Vector256<float>.Zero);
        var theMin = -min;
        for (var j = 0; j < Lanes; j++)
        {
            scales[j] = scale.GetElement(j);
            mins[j] = theMin.GetElement(j);
        }
        Span<float> levels = MemoryMarshal.Cast<Vector256<float>, float>(best);
        for (var j = 0; j < Lanes; j++)
        {
            var isLive = live.AsInt32().GetElement(j) != 0;
            for (var l = 0; l < N; l++) L[N * j + l] = isLive ? (byte)levels[l * Lanes + j] : (byte)0;
        }
    }

    /// <summary>
    /// make_qx_quants (rmse_type 1, weights x²) of Q6_K for the sixteen 16-value sub-blocks of a
    /// super-block, eight sub-blocks per vector: <paramref name="L"/> gets the 256 levels (offset by
    /// 32) and <paramref name="scales"/> the 16 scales, to the bit as ggml's scalar loop computes them.
    /// </summary>
    [SkipLocalsInit]
    public static void SignedScales16(ReadOnlySpan<float> xb, int nmax, Span<sbyte> L, Span<float> scales)
    {
        const int n = 16;
        Span<Vector256<float>> x = stackalloc Vector256<float>[n];
        Span<Vector256<float>> lv = stackalloc Vector256<float>[n];
        Span<Vector256<float>> best = stackalloc Vector256<float>[n];
        Span<float> t = MemoryMarshal.Cast<Vector256<float>, float>(x);
        Span<float> levels = MemoryMarshal.Cast<Vector256<float>, float>(best);
        var low = Vector256.Create(-nmax);
        var high = Vector256.Create(nmax - 1);
        for (var g = 0; g < 2; g++)
        {
            for (var j = 0; j < Lanes; j++)
                for (var i = 0; i < n; i++) t[i * Lanes + j] = xb[n * (Lanes * g + j) + i];
            var max = Vector256<float>.Zero;
            var amax = Vector256<float>.Zero;
            for (var i = 0; i < n; i++)
            {
                var ax = Vector256.Abs(x[i]);
                var larger = Vector256.GreaterThan(ax, amax);
                amax = Vector256.ConditionalSelect(larger, ax, amax);
                max = Vector256.ConditionalSelect(larger, x[i], max);
            }
            var live = ~Vector256.LessThan(amax, Vector256.Create(1e-15f));
            var iscale = Vector256.Create((float)-nmax) / max;
            Vector256<float> sumlx = default, suml2 = default;
            for (var i = 0; i < n; i++)
            {
                var l = SignedLevel(iscale * x[i], low, high);
                best[i] = l;
                var w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            var scale = Vector256.ConditionalSelect(Vector256.Equals(suml2, Vector256<float>.Zero), Vector256<float>.Zero, sumlx / suml2);
            var bestValue = scale * sumlx;
            for (var @is = -9; @is <= 9; @is++)
            {
                if (@is == 0) continue;
                iscale = Vector256.Create(-(nmax + 0.1f * @is)) / max;
                sumlx = suml2 = default;
                for (var i = 0; i < n; i++)
                {
                    var l = SignedLevel(iscale * x[i], low, high);
                    lv[i] = l;
                    var w = x[i] * x[i];
                    sumlx += w * x[i] * l;
                    suml2 += w * l * l;
                }
                var better = Vector256.GreaterThan(suml2, Vector256<float>.Zero) & Vector256.GreaterThan(sumlx * sumlx, bestValue * suml2) & live;
                if (better == Vector256<float>.Zero) continue;
                for (var i = 0; i < n; i++) best[i] = Vector256.ConditionalSelect(better, lv[i], best[i]);
                scale = Vector256.ConditionalSelect(better, sumlx / suml2, scale);
                bestValue = Vector256.ConditionalSelect(better, scale * sumlx, bestValue);
            }
            scale = Vector256.ConditionalSelect(live, scale, Vector256<float>.Zero);
            for (var j = 0; j < Lanes; j++)
            {
                var sub = Lanes * g + j;
                scales[sub] = scale.GetElement(j);
                var isLive = live.AsInt32().GetElement(j) != 0;
                for (var i = 0; i < n; i++) L[n * sub + i] = isLive ? (sbyte)(nmax + (int)levels[i * Lanes + j]) : (sbyte)0;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SignedLevel(Vector256<float> v, Vector256<int> low, Vector256<int> high)
    {
        var l = ((v + Vector256.Create(12582912f)).AsInt32() & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000);
        return Vector256.ConvertToSingle(Vector256.Min(Vector256.Max(l, low), high));
    }

    /// <summary>The second pass of Q6_K for sub-block <paramref name="j"/>: levels x / dj in [-32, 31], stored offset by 32.</summary>
    public static void RequantizeSigned16(ReadOnlySpan<float> xb, int j, float dj, Span<sbyte> L)
    {
        var djv = Vector256.Create(dj);
        var low = Vector256.Create(-32);
        var high = Vector256.Create(31);
        ref var xr = ref MemoryMarshal.GetReference(xb);
        for (var c = 0; c < 16; c += Lanes)
        {
            var level = SignedLevel(Vector256.LoadUnsafe(ref xr, (nuint)(16 * j + c)) / djv, low, high);
            for (var k = 0; k < Lanes; k++) L[16 * j + c + k] = (sbyte)((int)level.GetElement(k) + 32);
        }
    }

    /// <summary>ggml's nearest_int (the integer lands in the mantissa after adding 1.5·2^23), clamped to [0, nmax], as a float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Level(Vector256<float> v, int nmax)
    {
        var l = ((v + Vector256.Create(12582912f)).AsInt32() & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000);
        l = Vector256.Min(Vector256.Max(l, Vector256<int>.Zero), Vector256.Create(nmax));
        return Vector256.ConvertToSingle(l);
    }

    /// <summary>
    /// The second pass of Q4_K/Q5_K: levels from the stored (rounded) scales and mins, eight values at
    /// a time (each is independent; division is exact in both forms). Sub-blocks whose scale
    /// rounded to zero keep the levels of the search, as in ggml.
    /// </summary>
    public static void Requantize(ReadOnlySpan<float> xb, int j, float dj, float dm, int nmax, Span<byte> L)
    {
        var djv = Vector256.Create(dj);
        var dmv = Vector256.Create(dm);
        ref var xr = ref MemoryMarshal.GetReference(xb);
        for (var c = 0; c < N; c += Lanes)
        {
            var v = Vector256.LoadUnsafe(ref xr, (nuint)(N * j + c));
            var level = Level((v + dmv) / djv, nmax);
            for (var k = 0; k < Lanes; k++) L[N * j + c + k] = (byte)level.GetElement(k);
        }
    }
}
