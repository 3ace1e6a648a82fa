using System.Buffers.Binary;
using System.Runtime.InteropServices;
using FineTune.Gguf.Format;

namespace FineTune.Gguf.Quantization;

/// <summary>
/// Turns ggml tensor data back into 32-bit floats, as ggml's <c>dequantize_row_*</c> functions do
/// (same operations in the same order, so the floats are the ones llama.cpp computes with). Covers
/// every type <see cref="Quantizer"/> writes.
/// </summary>
public static class Dequantizer
{
    /// <summary>The types this dequantizer reads.</summary>
    public static IReadOnlyList<GgmlType> SupportedTypes => Quantizer.SupportedTypes;

    /// <summary>The <paramref name="count"/> floats that <paramref name="data"/> of <paramref name="type"/> holds.</summary>
    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> data, long count)
    {
        var (block, size) = GgmlTypeInfo.Layout(type) ?? throw new ArgumentException($"Unknown ggml type {type}.", nameof(type));
        if (count % block != 0 || data.Length != count / block * size)
            throw new ArgumentException($"{data.Length} bytes of {type} do not hold {count} values.", nameof(data));
        var y = new float[count];
        switch (type)
        {
            case GgmlType.F32: MemoryMarshal.Cast<byte, float>(data).CopyTo(y); break;
            case GgmlType.F16: HalfBits.ToFloat(MemoryMarshal.Cast<byte, ushort>(data), y); break;
            case GgmlType.BF16:
                for (var i = 0; i < y.Length; i++) y[i] = HalfBits.BFloat16ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(data[(2 * i)..]));
                break;
            default:
                var kernel = Kernel(type);
                for (long b = 0; b < count / block; b++)
                    kernel(data.Slice(checked((int)(b * size)), size), y.AsSpan(checked((int)(b * block)), block));
                break;
        }
        return y;
    }

    private delegate void BlockKernel(ReadOnlySpan<byte> x, Span<float> y);

    private static BlockKernel Kernel(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => Q8_0,
        GgmlType.Q4_0 => Q4_0,
        GgmlType.Q5_0 => Q5_0,
        GgmlType.Q5_1 => Q5_1,
        GgmlType.Q4_K => Q4_K,
        GgmlType.Q5_K => Q5_K,
        GgmlType.Q6_K => Q6_K,
        _ => throw new NotSupportedException($"Reading {type} tensors is not supported; the engine reads {string.Join(", ", SupportedTypes)}."),
    };

    private static float Half(ReadOnlySpan<byte> x, int at) => HalfBits.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(x[at..]));

    // block_q8_0 { half d; int8 qs[32]; }
    private static void Q8_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 0);
        for (var j = 0; j < 32; j++) y[j] = (sbyte)x[2 + j] * d;
    }

    // block_q4_0 { half d; uint8 qs[16]; }: low nibbles are values 0..15, high nibbles 16..31.
    private static void Q4_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 0);
        for (var j = 0; j < 16; j++)
        {
            y[j] = ((x[2 + j] & 0x0F) - 8) * d;
            y[j + 16] = ((x[2 + j] >> 4) - 8) * d;
        }
    }

    // block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; }: qh holds the fifth bit of each value.
    private static void Q5_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 0);
        var qh = BinaryPrimitives.ReadUInt32LittleEndian(x[2..]);
        for (var j = 0; j < 16; j++)
        {
            var h0 = (int)((qh >> j) << 4) & 0x10;
            var h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = ((x[6 + j] & 0x0F | h0) - 16) * d;
            y[j + 16] = ((x[6 + j] >> 4 | h1) - 16) * d;
        }
    }

    // block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }
    private static void Q5_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 0);
        var m = Half(x, 2);
        var qh = BinaryPrimitives.ReadUInt32LittleEndian(x[4..]);
        for (var j = 0; j < 16; j++)
        {
            var h0 = (int)((qh >> j) << 4) & 0x10;
            var h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (x[8 + j] & 0x0F | h0) * d + m;
            y[j + 16] = (x[8 + j] >> 4 | h1) * d + m;
        }
    }

    // get_scale_min_k4: eight 6-bit scales and eight 6-bit mins packed in 12 bytes.
    private static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    // block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }
    private static void Q4_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 0);
        var min = Half(x, 2);
        var scales = x.Slice(4, 12);
        var q = x.Slice(16, 128);
        var o = 0;
        for (int j = 0, s = 0; j < 256; j += 64, s += 2, q = q[32..])
        {
            var (sc1, m1) = ScaleMin(s, scales);
            var (sc2, m2) = ScaleMin(s + 1, scales);
            float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
            for (var l = 0; l < 32; l++) y[o++] = d1 * (q[l] & 0xF) - min1;
            for (var l = 0; l < 32; l++) y[o++] = d2 * (q[l] >> 4) - min2;
        }
    }

    // block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }
    private static void Q5_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 0);
        var min = Half(x, 2);
        var scales = x.Slice(4, 12);
        var qh = x.Slice(16, 32);
        var ql = x.Slice(48, 128);
        var o = 0;
        int u1 = 1, u2 = 2;
        for (int j = 0, s = 0; j < 256; j += 64, s += 2, ql = ql[32..], u1 <<= 2, u2 <<= 2)
        {
            var (sc1, m1) = ScaleMin(s, scales);
            var (sc2, m2) = ScaleMin(s + 1, scales);
            float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
            for (var l = 0; l < 32; l++) y[o++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - min1;
            for (var l = 0; l < 32; l++) y[o++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - min2;
        }
    }

    // block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }
    private static void Q6_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var d = Half(x, 208);
        var ql = x[..128];
        var qh = x.Slice(128, 64);
        var sc = x.Slice(192, 16);
        for (var n = 0; n < 256; n += 128, ql = ql[64..], qh = qh[32..], sc = sc[8..])
            for (var l = 0; l < 32; l++)
            {
                var i = l / 16;
                var q1 = (sbyte)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                var q2 = (sbyte)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                var q3 = (sbyte)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                var q4 = (sbyte)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[n + l] = d * (sbyte)sc[i] * q1;
                y[n + l + 32] = d * (sbyte)sc[i + 2] * q2;
                y[n + l + 64] = d * (sbyte)sc[i + 4] * q3;
                y[n + l + 96] = d * (sbyte)sc[i + 6] * q4;
            }
    }
}
