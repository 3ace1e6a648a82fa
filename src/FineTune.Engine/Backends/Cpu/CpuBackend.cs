using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// Multi-threaded CPU kernels. Matrix products are register-blocked (4 rows of A × 2 rows of B per
/// inner loop, 256-bit vectors) and split into tiles across threads; every output element is summed
/// by one thread in a fixed order, so results do not depend on the number of threads or scheduling.
/// </summary>
public sealed class CpuBackend : IComputeBackend
{
    private const int TileRows = 16;
    private const int TileCols = 64;
    private readonly ParallelOptions _parallel;

    /// <summary>Creates a backend using up to <paramref name="threads"/> threads (default: all cores).</summary>
    public CpuBackend(int? threads = null)
    {
        Threads = Math.Max(1, threads ?? Environment.ProcessorCount);
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = Threads };
    }

    /// <summary>Threads used by parallel kernels.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public string Name => $"cpu ({Threads} threads)";

    /// <inheritdoc />
    public void For(int count, Action<int> body)
    {
        if (count == 1 || Threads == 1)
        {
            for (var i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, _parallel, body);
    }

    /// <inheritdoc />
    public void Transpose(float[] src, int srcOffset, float[] dst, int dstOffset, int rows, int cols)
    {
        const int block = 32;
        var rowBlocks = (rows + block - 1) / block;
        For(rowBlocks, rb =>
        {
            var r0 = rb * block;
            var r1 = Math.Min(rows, r0 + block);
            for (var c0 = 0; c0 < cols; c0 += block)
            {
                var c1 = Math.Min(cols, c0 + block);
                for (var r = r0; r < r1; r++)
                for (var c = c0; c < c1; c++)
                    dst[dstOffset + c * rows + r] = src[srcOffset + r * cols + c];
            }
        });
    }

    /// <inheritdoc />
    public void MatMulTransposed(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false)
    {
        if (m == 0 || n == 0) return;
        var rowTiles = (m + TileRows - 1) / TileRows;
        var colTiles = (n + TileCols - 1) / TileCols;
        For(rowTiles * colTiles, tile =>
        {
            var r0 = tile / colTiles * TileRows;
            var c0 = tile % colTiles * TileCols;
            Tile(a, aOffset, b, bOffset, c, cOffset, r0, Math.Min(m, r0 + TileRows), c0, Math.Min(n, c0 + TileCols), n, k, accumulate);
        });
    }

    private static unsafe void Tile(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset,
        int r0, int r1, int c0, int c1, int n, int k, bool accumulate)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            var i = r0;
            for (; i + 4 <= r1; i += 4)
            {
                var j = c0;
                for (; j + 2 <= c1; j += 2)
                    Kernel4x2(pa + aOffset + (long)i * k, pb + bOffset + (long)j * k, pc + cOffset + (long)i * n + j, n, k, accumulate);
                for (; j < c1; j++)
                    for (var ii = i; ii < i + 4; ii++)
                        Store(pc + cOffset + (long)ii * n + j, Dot(pa + aOffset + (long)ii * k, pb + bOffset + (long)j * k, k), accumulate);
            }
            for (; i < r1; i++)
                for (var j = c0; j < c1; j++)
                    Store(pc + cOffset + (long)i * n + j, Dot(pa + aOffset + (long)i * k, pb + bOffset + (long)j * k, k), accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* p, float v, bool accumulate)
    {
        if (accumulate) *p += v; else *p = v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma(Vector256<float> x, Vector256<float> y, Vector256<float> acc) =>
        Vector256.FusedMultiplyAdd(x, y, acc);

    /// <summary>Dot product with the same summation order as <see cref="Kernel4x2"/>, so edge tiles agree with inner ones.</summary>
    internal static unsafe float Dot(float* x, float* y, int k)
    {
        var acc = Vector256<float>.Zero;
        var p = 0;
        for (; p + 8 <= k; p += 8)
            acc = Fma(Vector256.Load(x + p), Vector256.Load(y + p), acc);
        var s = Vector256.Sum(acc);
        for (; p < k; p++) s += x[p] * y[p];
        return s;
    }

    private static unsafe void Kernel4x2(float* a, float* b, float* c, int ldc, int k, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default;
        float* a0 = a, a1 = a + k, a2 = a + 2L * k, a3 = a + 3L * k;
        float* b0 = b, b1 = b + k;
        var p = 0;
        for (; p + 8 <= k; p += 8)
        {
            var vb0 = Vector256.Load(b0 + p);
            var vb1 = Vector256.Load(b1 + p);
            var va = Vector256.Load(a0 + p);
            c00 = Fma(va, vb0, c00); c01 = Fma(va, vb1, c01);
            va = Vector256.Load(a1 + p);
            c10 = Fma(va, vb0, c10); c11 = Fma(va, vb1, c11);
            va = Vector256.Load(a2 + p);
            c20 = Fma(va, vb0, c20); c21 = Fma(va, vb1, c21);
            va = Vector256.Load(a3 + p);
            c30 = Fma(va, vb0, c30); c31 = Fma(va, vb1, c31);
        }
        float s00 = Vector256.Sum(c00), s01 = Vector256.Sum(c01), s10 = Vector256.Sum(c10), s11 = Vector256.Sum(c11),
            s20 = Vector256.Sum(c20), s21 = Vector256.Sum(c21), s30 = Vector256.Sum(c30), s31 = Vector256.Sum(c31);
        for (; p < k; p++)
        {
            s00 += a0[p] * b0[p]; s01 += a0[p] * b1[p];
            s10 += a1[p] * b0[p]; s11 += a1[p] * b1[p];
            s20 += a2[p] * b0[p]; s21 += a2[p] * b1[p];
            s30 += a3[p] * b0[p]; s31 += a3[p] * b1[p];
        }
        Store(c, s00, accumulate); Store(c + 1, s01, accumulate);
        Store(c + ldc, s10, accumulate); Store(c + ldc + 1, s11, accumulate);
        Store(c + 2 * ldc, s20, accumulate); Store(c + 2 * ldc + 1, s21, accumulate);
        Store(c + 3 * ldc, s30, accumulate); Store(c + 3 * ldc + 1, s31, accumulate);
    }
}
