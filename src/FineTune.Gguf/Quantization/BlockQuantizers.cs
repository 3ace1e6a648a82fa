using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FineTune.Gguf.Quantization;

/// <summary>
/// The 32-element block formats (Q8_0, Q4_0, Q5_0, Q5_1), following ggml's reference quantizers
/// (<c>quantize_row_*_ref</c>) operation for operation so the bytes match llama.cpp's.
/// </summary>
internal static class BlockQuantizers
{
    public const int QK = 32;

    public static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            Q8_0Vector512(x, y);
            return;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Q8_0Vector(x, y);
            return;
        }
        var nb = x.Length / QK;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * 34, 34);
            var amax = 0f;
            for (var j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(xb[j]));
            var d = amax / ((1 << 7) - 1);
            var id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(yb, HalfBits.FromFloat(d));
            for (var j = 0; j < QK; j++)
                yb[2 + j] = (byte)(sbyte)MathF.Round(xb[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>
    /// <see cref="Q8_0"/> eight lanes at a time. Each value sees the same single-precision operations as
    /// the scalar reference: |x| max, one division, one reciprocal, one product, and roundf's
    /// half-away-from-zero rounding done as truncate-then-adjust (exact, unlike adding 0.5).
    /// </summary>
    private static void Q8_0Vector(ReadOnlySpan<float> x, Span<byte> y)
    {
        var nb = x.Length / QK;
        if (y.Length < nb * 34) throw new ArgumentException("The destination is too short.", nameof(y));
        ref var src = ref MemoryMarshal.GetReference(x);
        ref var dst = ref MemoryMarshal.GetReference(y);
        var half = Vector256.Create(0.5f);
        var one = Vector256.Create(1f);
        for (var i = 0; i < nb; i++)
        {
            var v0 = Vector256.LoadUnsafe(ref src, (nuint)(i * QK));
            var v1 = Vector256.LoadUnsafe(ref src, (nuint)(i * QK + 8));
            var v2 = Vector256.LoadUnsafe(ref src, (nuint)(i * QK + 16));
            var v3 = Vector256.LoadUnsafe(ref src, (nuint)(i * QK + 24));
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            var amax = HorizontalMax(Vector128.Max(m.GetLower(), m.GetUpper()));
            var d = amax / ((1 << 7) - 1);
            var id = d != 0 ? 1.0f / d : 0.0f;
            ref var yb = ref Unsafe.Add(ref dst, i * 34);
            Unsafe.WriteUnaligned(ref yb, HalfBits.FromFloat(d));
            var idv = Vector256.Create(id);
            var r0 = RoundAway(v0 * idv, half, one);
            var r1 = RoundAway(v1 * idv, half, one);
            var r2 = RoundAway(v2 * idv, half, one);
            var r3 = RoundAway(v3 * idv, half, one);
            var s01 = Vector256.Narrow(Vector256.ConvertToInt32(r0), Vector256.ConvertToInt32(r1));
            var s23 = Vector256.Narrow(Vector256.ConvertToInt32(r2), Vector256.ConvertToInt32(r3));
            Vector256.Narrow(s01, s23).AsByte().StoreUnsafe(ref Unsafe.Add(ref yb, 2));
        }
    }

    /// <summary>
    /// <see cref="Q8_0"/> sixteen lanes at a time: a block is two vectors, and each vector of rounded
    /// values narrows to 16 bytes in one instruction. Same operations per value as the reference.
    /// </summary>
    private static void Q8_0Vector512(ReadOnlySpan<float> x, Span<byte> y)
    {
        var nb = x.Length / QK;
        if (y.Length < nb * 34) throw new ArgumentException("The destination is too short.", nameof(y));
        ref var src = ref MemoryMarshal.GetReference(x);
        ref var dst = ref MemoryMarshal.GetReference(y);
        var half = Vector512.Create(0.5f);
        var one = Vector512.Create(1f);
        for (var i = 0; i < nb; i++)
        {
            var v0 = Vector512.LoadUnsafe(ref src, (nuint)(i * QK));
            var v1 = Vector512.LoadUnsafe(ref src, (nuint)(i * QK + 16));
            var m = Vector512.Max(Vector512.Abs(v0), Vector512.Abs(v1));
            var m256 = Vector256.Max(m.GetLower(), m.GetUpper());
            var amax = HorizontalMax(Vector128.Max(m256.GetLower(), m256.GetUpper()));
            var d = amax / ((1 << 7) - 1);
            var id = d != 0 ? 1.0f / d : 0.0f;
            ref var yb = ref Unsafe.Add(ref dst, i * 34);
            Unsafe.WriteUnaligned(ref yb, HalfBits.FromFloat(d));
            var idv = Vector512.Create(id);
            var q0 = Avx512F.ConvertToVector128SByte(Vector512.ConvertToInt32(RoundAway(v0 * idv, half, one)));
            var q1 = Avx512F.ConvertToVector128SByte(Vector512.ConvertToInt32(RoundAway(v1 * idv, half, one)));
            q0.AsByte().StoreUnsafe(ref Unsafe.Add(ref yb, 2));
            q1.AsByte().StoreUnsafe(ref Unsafe.Add(ref yb, 18));
        }
    }

    /// <summary>The largest of four non-negative floats (the |x| maxima), as a scalar max over them would give.</summary>
    private static float HorizontalMax(Vector128<float> m)
    {
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }

    private static Vector256<float> RoundAway(Vector256<float> v, Vector256<float> half, Vector256<float> one)
    {
        var t = Vector256.Truncate(v);
        var up = Vector256.GreaterThanOrEqual(Vector256.Abs(v - t), half);
        return t + (up & Vector256.CopySign(one, v));
    }

    private static Vector512<float> RoundAway(Vector512<float> v, Vector512<float> half, Vector512<float> one)
    {
        var t = Vector512.Truncate(v);
        var up = Vector512.GreaterThanOrEqual(Vector512.Abs(v - t), half);
        return t + (up & Vector512.CopySign(one, v));
    }

    public static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        var nb = x.Length / QK;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * 18, 18);
            var (max, _) = SignedAbsMax(xb);
            var d = max / -8;
            var id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(yb, HalfBits.FromFloat(d));
            for (var j = 0; j < QK / 2; j++)
            {
                var xi0 = Math.Min(15, (int)(sbyte)(xb[j] * id + 8.5f));
                var xi1 = Math.Min(15, (int)(sbyte)(xb[QK / 2 + j] * id + 8.5f));
                yb[2 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    public static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        var nb = x.Length / QK;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * 22, 22);
            var (max, _) = SignedAbsMax(xb);
            var d = max / -16;
            var id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(yb, HalfBits.FromFloat(d));
            uint qh = 0;
            for (var j = 0; j < QK / 2; j++)
            {
                var xi0 = (uint)Math.Min(31, (int)(sbyte)(xb[j] * id + 16.5f));
                var xi1 = (uint)Math.Min(31, (int)(sbyte)(xb[QK / 2 + j] * id + 16.5f));
                yb[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(yb[2..], qh);
        }
    }

    public static void Q5_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var nb = x.Length / QK;
        for (var i = 0; i < nb; i++)
        {
            var xb = x.Slice(i * QK, QK);
            var yb = y.Slice(i * 24, 24);
            var min = float.MaxValue;
            var max = -float.MaxValue;
            for (var j = 0; j < QK; j++)
            {
                var v = xb[j];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            var d = (max - min) / ((1 << 5) - 1);
            var id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(yb, HalfBits.FromFloat(d));
            BinaryPrimitives.WriteUInt16LittleEndian(yb[2..], HalfBits.FromFloat(min));
            uint qh = 0;
            for (var j = 0; j < QK / 2; j++)
            {
                var xi0 = (uint)(byte)((xb[j] - min) * id + 0.5f);
                var xi1 = (uint)(byte)((xb[QK / 2 + j] - min) * id + 0.5f);
                yb[8 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(yb[4..], qh);
        }
    }

    /// <summary>The element with the largest magnitude (first one on ties), as ggml's Q4_0/Q5_0 pick it.</summary>
    private static (float Max, float AMax) SignedAbsMax(ReadOnlySpan<float> xb)
    {
        float amax = 0, max = 0;
        foreach (var v in xb)
        {
            if (amax < MathF.Abs(v))
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }
        return (max, amax);
    }
}
