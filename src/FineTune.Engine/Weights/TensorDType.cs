using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Weights;

/// <summary>Element types of safetensors tensors the engine reads and writes.</summary>
public enum TensorDType
{
    /// <summary>IEEE 754 single precision.</summary>
    F32,
    /// <summary>IEEE 754 half precision.</summary>
    F16,
    /// <summary>bfloat16: the top 16 bits of an F32.</summary>
    BF16,
}

/// <summary>Names, sizes and conversions of <see cref="TensorDType"/>.</summary>
public static class TensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this TensorDType t) => t == TensorDType.F32 ? 4 : 2;

    /// <summary>The safetensors spelling (<c>F32</c>, <c>F16</c>, <c>BF16</c>).</summary>
    public static string Name(this TensorDType t) => t switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        _ => "BF16",
    };

    /// <summary>Parses the safetensors spelling; anything else is FT3010 naming the file and tensor.</summary>
    public static TensorDType Parse(string name, string file, string tensor) => name switch
    {
        "F32" => TensorDType.F32,
        "F16" => TensorDType.F16,
        "BF16" => TensorDType.BF16,
        _ => throw new FineTuneException("FT3010",
            $"Tensor '{tensor}' has dtype {name}; only F32, F16 and BF16 weights are supported.", file),
    };

    /// <summary>Converts little-endian raw elements to floats.</summary>
    public static void ToF32(TensorDType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (t)
        {
            case TensorDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (var i = 0; i < dst.Length; i++) dst[i] = (float)h[i];
                break;
            default:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(src);
                for (var i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(b[i] << 16);
                break;
        }
    }

    /// <summary>Converts floats to little-endian raw elements (round to nearest even for F16 and BF16).</summary>
    public static void FromF32(TensorDType t, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (t)
        {
            case TensorDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(dst);
                for (var i = 0; i < src.Length; i++) h[i] = (Half)src[i];
                break;
            default:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst);
                for (var i = 0; i < src.Length; i++) b[i] = ToBFloat16(src[i]);
                break;
        }
    }

    /// <summary>
    /// Converts little-endian raw elements to bfloat16 bits: BF16 copied as stored, F32 and F16 (whose
    /// every value is exact in F32) rounded to nearest even by <see cref="ToBFloat16"/>, the rounding
    /// the GPU's <c>f32_to_bf16</c> kernel applies, so a tensor converted here equals one widened to
    /// F32 and converted on the device.
    /// </summary>
    public static void ToBF16(TensorDType t, ReadOnlySpan<byte> src, Span<ushort> dst)
    {
        if (src.Length != (long)dst.Length * t.Size())
            throw new ArgumentException($"{src.Length} bytes of {t.Name()} do not make {dst.Length} elements.");
        switch (t)
        {
            case TensorDType.F32:
                var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src);
                for (var i = 0; i < dst.Length; i++) dst[i] = ToBFloat16(f[i]);
                break;
            case TensorDType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (var i = 0; i < dst.Length; i++) dst[i] = ToBFloat16((float)h[i]);
                break;
            default:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length].CopyTo(dst);
                break;
        }
    }

    /// <summary>Rounds a float to bfloat16 bits, nearest even, keeping NaN a NaN.</summary>
    public static ushort ToBFloat16(float f)
    {
        var bits = (uint)BitConverter.SingleToInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
