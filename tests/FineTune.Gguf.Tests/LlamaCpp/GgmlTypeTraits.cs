using System.Runtime.InteropServices;

namespace FineTune.Gguf.Tests.LlamaCpp;

/// <summary>
/// ggml's own quantize and dequantize functions (<c>ggml_quantize_chunk</c> and the type traits'
/// <c>to_float</c>) from libggml-base of @node-llama-cpp/linux-x64: the floats llama.cpp computes
/// with for each tensor type.
/// </summary>
internal static unsafe class GgmlTypeTraits
{
    // struct ggml_type_traits { const char* type_name; int64 blck_size; int64 blck_size_interleave;
    //   size_t type_size; bool is_quantized; to_float; from_float_ref; } (ggml.h); checked per call.
    [StructLayout(LayoutKind.Sequential)]
    private struct Traits
    {
        public byte* TypeName;
        public long BlockSize;
        public long BlockSizeInterleave;
        public nuint TypeSize;
        public byte IsQuantized;
        public delegate* unmanaged[Cdecl]<void*, float*, long, void> ToFloat;
        public void* FromFloatRef;
    }

    private static readonly Lazy<IntPtr> Library = new(() =>
    {
        LlamaNative.EnsureLoaded();
        return NativeLibrary.Load(Path.Combine(LlamaNative.LibraryDirectory, "libggml-base.so"));
    });

    private static Traits* Get(int type, string name, int blockSize, int typeSize)
    {
        var fn = (delegate* unmanaged[Cdecl]<int, Traits*>)NativeLibrary.GetExport(Library.Value, "ggml_get_type_traits");
        var t = fn(type);
        var actual = Marshal.PtrToStringUTF8((IntPtr)t->TypeName);
        if (actual != name || t->BlockSize != blockSize || (int)t->TypeSize != typeSize)
            throw new InvalidOperationException($"ggml_type_traits layout differs: type {type} is '{actual}' with blocks of {t->BlockSize} in {t->TypeSize} bytes, expected '{name}', {blockSize}, {typeSize}.");
        return t;
    }

    /// <summary>ggml_quantize_chunk over whole rows (no importance matrix).</summary>
    public static byte[] Quantize(int type, float[] values, int rowLength, int bytes)
    {
        var fn = (delegate* unmanaged[Cdecl]<int, float*, void*, long, long, long, float*, nuint>)NativeLibrary.GetExport(Library.Value, "ggml_quantize_chunk");
        var result = new byte[bytes];
        fixed (float* src = values)
        fixed (byte* dst = result)
        {
            var written = fn(type, src, dst, 0, values.Length / rowLength, rowLength, null);
            if ((int)written != bytes) throw new InvalidOperationException($"ggml_quantize_chunk wrote {written} bytes, expected {bytes}.");
        }
        return result;
    }

    /// <summary>The type's to_float over <paramref name="data"/>.</summary>
    public static float[] ToFloat(int type, string name, int blockSize, int typeSize, byte[] data, int count)
    {
        var t = Get(type, name, blockSize, typeSize);
        var result = new float[count];
        fixed (byte* src = data)
        fixed (float* dst = result)
            t->ToFloat(src, dst, count);
        return result;
    }
}
