using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// The register tiles of <see cref="Gemm"/>: 6 rows of C × one packed panel of B (two vectors wide),
/// twelve accumulators, one fused multiply-add per element per k step; and, with AVX-512, for products
/// at most 16 columns wide (the LoRA rank: x·Aᵀ, dy·B, dB), 8 rows × one vector, which does not spend
/// half of every multiply-add on a panel's empty second vector. AVX-512, AVX2+FMA and a scalar fallback
/// compute the same chain per element, so every tile gives the same bytes.
/// </summary>
internal static unsafe class GemmKernels
{
    /// <summary>Rows of C per register tile.</summary>
    public const int Rows = 6;

    private static readonly bool Use512 = Avx512F.IsSupported && Vector512.IsHardwareAccelerated;
    private static readonly bool Use256 = Fma.IsSupported && Avx2.IsSupported;

    /// <summary>Columns of B per packed panel: two vectors.</summary>
    public static readonly int PanelWidth = Use512 ? 32 : 16;

    /// <summary>Rows of C per register tile and columns of B per packed panel.</summary>
    public readonly record struct Shape(int Rows, int Width);

    /// <summary>The 6-row tile over two vectors (the layout of prepared operands).</summary>
    public static readonly Shape Wide = new(Rows, PanelWidth);

    /// <summary>8 rows over one 16-lane vector (AVX-512 only).</summary>
    public static readonly Shape Narrow = new(8, 16);

    /// <summary>The tile for a product <paramref name="n"/> columns wide; a prepared B is always in the wide layout.</summary>
    public static Shape ShapeFor(int n, bool prepared) => Use512 && n <= Narrow.Width && !prepared ? Narrow : Wide;

    /// <summary>
    /// C[rows × cols] (+)= A[rows × kc] · panel[kc × PanelWidth] for one tile. Rows beyond
    /// <paramref name="rows"/> and columns beyond <paramref name="cols"/> are computed into a scratch
    /// tile and dropped; <paramref name="load"/> continues the chains from C instead of from zero.
    /// </summary>
    public static void Tile(Shape shape, float* a, long aRowStride, long aKStride, int rows, float* panel, int kc, float* c, int ldc, int cols, bool load)
    {
        var nr = shape.Width;
        var full = rows == shape.Rows && cols == nr;
        var tmp = stackalloc float[Rows * 32];
        var dst = c;
        var ld = ldc;
        if (!full)
        {
            dst = tmp;
            ld = nr;
            if (load)
                for (var i = 0; i < rows; i++)
                    for (var j = 0; j < cols; j++) tmp[i * nr + j] = c[(long)i * ldc + j];
        }
        // Rows past the end read the last real row again; their results land in the scratch tile only.
        if (shape.Width != PanelWidth)
        {
            KernelNarrow512(a, aRowStride, rows, aKStride, panel, kc, dst, ld, load);
            if (!full)
                for (var i = 0; i < rows; i++)
                    for (var j = 0; j < cols; j++) c[(long)i * ldc + j] = tmp[i * nr + j];
            return;
        }
        var a0 = a;
        var a1 = a + Math.Min(1, rows - 1) * aRowStride;
        var a2 = a + Math.Min(2, rows - 1) * aRowStride;
        var a3 = a + Math.Min(3, rows - 1) * aRowStride;
        var a4 = a + Math.Min(4, rows - 1) * aRowStride;
        var a5 = a + Math.Min(5, rows - 1) * aRowStride;
        if (Use512) Kernel512(a0, a1, a2, a3, a4, a5, aKStride, panel, kc, dst, ld, load);
        else if (Use256) Kernel256(a0, a1, a2, a3, a4, a5, aKStride, panel, kc, dst, ld, load);
        else KernelScalar(a0, a1, a2, a3, a4, a5, aKStride, panel, kc, dst, ld, load);
        if (!full)
            for (var i = 0; i < rows; i++)
                for (var j = 0; j < cols; j++) c[(long)i * ldc + j] = tmp[i * nr + j];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, long ks, float* b, int kc, float* c, int ldc, bool load)
    {
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        float* r0 = c, r1 = c + ldc, r2 = c + 2 * ldc, r3 = c + 3 * ldc, r4 = c + 4 * ldc, r5 = c + 5 * ldc;
        if (load)
        {
            c00 = Vector256.Load(r0); c01 = Vector256.Load(r0 + 8);
            c10 = Vector256.Load(r1); c11 = Vector256.Load(r1 + 8);
            c20 = Vector256.Load(r2); c21 = Vector256.Load(r2 + 8);
            c30 = Vector256.Load(r3); c31 = Vector256.Load(r3 + 8);
            c40 = Vector256.Load(r4); c41 = Vector256.Load(r4 + 8);
            c50 = Vector256.Load(r5); c51 = Vector256.Load(r5 + 8);
        }
        else c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector256<float>.Zero;
        long o = 0;
        for (var p = 0; p < kc; p++, o += ks, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Avx.BroadcastScalarToVector256(a0 + o);
            c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Avx.BroadcastScalarToVector256(a1 + o);
            c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Avx.BroadcastScalarToVector256(a2 + o);
            c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Avx.BroadcastScalarToVector256(a3 + o);
            c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Avx.BroadcastScalarToVector256(a4 + o);
            c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Avx.BroadcastScalarToVector256(a5 + o);
            c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
        }
        c00.Store(r0); c01.Store(r0 + 8);
        c10.Store(r1); c11.Store(r1 + 8);
        c20.Store(r2); c21.Store(r2 + 8);
        c30.Store(r3); c31.Store(r3 + 8);
        c40.Store(r4); c41.Store(r4 + 8);
        c50.Store(r5); c51.Store(r5 + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, long ks, float* b, int kc, float* c, int ldc, bool load)
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        float* r0 = c, r1 = c + ldc, r2 = c + 2 * ldc, r3 = c + 3 * ldc, r4 = c + 4 * ldc, r5 = c + 5 * ldc;
        if (load)
        {
            c00 = Vector512.Load(r0); c01 = Vector512.Load(r0 + 16);
            c10 = Vector512.Load(r1); c11 = Vector512.Load(r1 + 16);
            c20 = Vector512.Load(r2); c21 = Vector512.Load(r2 + 16);
            c30 = Vector512.Load(r3); c31 = Vector512.Load(r3 + 16);
            c40 = Vector512.Load(r4); c41 = Vector512.Load(r4 + 16);
            c50 = Vector512.Load(r5); c51 = Vector512.Load(r5 + 16);
        }
        else c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector512<float>.Zero;
        long o = 0;
        for (var p = 0; p < kc; p++, o += ks, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a0[o]);
            c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[o]);
            c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[o]);
            c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[o]);
            c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[o]);
            c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[o]);
            c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
        }
        c00.Store(r0); c01.Store(r0 + 16);
        c10.Store(r1); c11.Store(r1 + 16);
        c20.Store(r2); c21.Store(r2 + 16);
        c30.Store(r3); c31.Store(r3 + 16);
        c40.Store(r4); c41.Store(r4 + 16);
        c50.Store(r5); c51.Store(r5 + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelNarrow512(float* a, long rowStride, int rows, long ks, float* b, int kc, float* c, int ldc, bool load)
    {
        var a0 = a;
        var a1 = a + Math.Min(1, rows - 1) * rowStride;
        var a2 = a + Math.Min(2, rows - 1) * rowStride;
        var a3 = a + Math.Min(3, rows - 1) * rowStride;
        var a4 = a + Math.Min(4, rows - 1) * rowStride;
        var a5 = a + Math.Min(5, rows - 1) * rowStride;
        var a6 = a + Math.Min(6, rows - 1) * rowStride;
        var a7 = a + Math.Min(7, rows - 1) * rowStride;
        Vector512<float> c0, c1, c2, c3, c4, c5, c6, c7;
        if (load)
        {
            c0 = Vector512.Load(c); c1 = Vector512.Load(c + ldc);
            c2 = Vector512.Load(c + 2 * ldc); c3 = Vector512.Load(c + 3 * ldc);
            c4 = Vector512.Load(c + 4 * ldc); c5 = Vector512.Load(c + 5 * ldc);
            c6 = Vector512.Load(c + 6 * ldc); c7 = Vector512.Load(c + 7 * ldc);
        }
        else c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = Vector512<float>.Zero;
        long o = 0;
        for (var p = 0; p < kc; p++, o += ks, b += 16)
        {
            var b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a0[o]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a1[o]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a2[o]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a3[o]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[o]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a5[o]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a6[o]), b0, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a7[o]), b0, c7);
        }
        c0.Store(c); c1.Store(c + ldc);
        c2.Store(c + 2 * ldc); c3.Store(c + 3 * ldc);
        c4.Store(c + 4 * ldc); c5.Store(c + 5 * ldc);
        c6.Store(c + 6 * ldc); c7.Store(c + 7 * ldc);
    }

    private static void KernelScalar(float* a0, float* a1, float* a2, float* a3, float* a4, float* a5, long ks, float* b, int kc, float* c, int ldc, bool load)
    {
        var rows = stackalloc[] { (nint)a0, (nint)a1, (nint)a2, (nint)a3, (nint)a4, (nint)a5 };
        for (var i = 0; i < Rows; i++)
        {
            var ai = (float*)rows[i];
            for (var j = 0; j < PanelWidth; j++)
            {
                var s = load ? c[(long)i * ldc + j] : 0f;
                for (var p = 0; p < kc; p++) s = MathF.FusedMultiplyAdd(ai[p * ks], b[p * PanelWidth + j], s);
                c[(long)i * ldc + j] = s;
            }
        }
    }
}
