using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// Multi-threaded CPU kernels. Matrix products are blocked and packed (<see cref="Gemm"/>); every output
/// element is summed by one fused multiply-add chain in a fixed order, so results do not depend on the
/// number of threads, the scheduling or the vector width (AVX-512, AVX2 or none).
/// </summary>
public sealed class CpuBackend : IComputeBackend
{
    private const int SmallRows = 2;
    private const int TileCols = 64;

    /// <summary>Creates a backend using up to <paramref name="threads"/> threads (default: all cores).</summary>
    public CpuBackend(int? threads = null)
    {
        Threads = Math.Max(1, threads ?? Environment.ProcessorCount);
    }

    /// <summary>Threads used by parallel kernels.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public string Name => $"cpu ({Threads} threads)";

    /// <inheritdoc />
    public void For(int count, Action<int> body) => WorkerPool.Shared.For(count, Threads, body);

    private List<GemmProblem>? _together;

    /// <inheritdoc />
    public IDisposable Together()
    {
        if (_together is not null) return NoScope.Instance;
        _together = [];
        return new TogetherScope(this);
    }

    /// <summary>Keeps <paramref name="problem"/> for the open <see cref="Together"/> scope, if there is one.</summary>
    internal bool Defer(in GemmProblem problem)
    {
        if (_together is null) return false;
        _together.Add(problem);
        return true;
    }

    private sealed class TogetherScope(CpuBackend be) : IDisposable
    {
        public void Dispose()
        {
            var problems = be._together;
            be._together = null;
            if (problems is { Count: > 0 }) Gemm.Together(problems, be);
        }
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
        if (m > SmallRows)
        {
            Gemm.Run(GemmProblem.NT(a, aOffset, b, bOffset, c, cOffset, m, n, k, accumulate), this);
            return;
        }
        // A row or two (decoding): dot products straight from B's rows beat packing B for one use.
        var colTiles = (n + TileCols - 1) / TileCols;
        For(colTiles, tile =>
        {
            var c0 = tile * TileCols;
            Tile(a, aOffset, b, bOffset, c, cOffset, 0, m, c0, Math.Min(n, c0 + TileCols), n, k, accumulate);
        });
    }

    /// <inheritdoc />
    public object PrepareTransposedOperand(float[] b, int n, int k) => Gemm.PackWhole(b, n, k, k, 1, this);

    /// <inheritdoc />
    public void MatMulTransposed(float[] a, int aOffset, float[] b, object prepared, float[] c, int cOffset, int m, int n, int k, bool accumulate = false)
    {
        if (m <= SmallRows) MatMulTransposed(a, aOffset, b, 0, c, cOffset, m, n, k, accumulate);
        else Gemm.Run(GemmProblem.NT(a, aOffset, b, 0, c, cOffset, m, n, k, accumulate) with { PackedB = (PackedPanels)prepared }, this);
    }

    /// <inheritdoc />
    public void MatMulTransposedThen(float[] a, float[] b, object? prepared, float[] a2, float[] b2, float[] c, int m, int n, int k, int k2, bool accumulate = false)
    {
        if (m <= SmallRows)
        {
            // Decoding's dot products are not one chain per element: no tail to continue.
            MatMulTransposed(a, 0, b, 0, c, 0, m, n, k, accumulate);
            MatMulTransposed(a2, 0, b2, 0, c, 0, m, n, k2, accumulate: true);
            return;
        }
        Gemm.Run(GemmProblem.NT(a, 0, b, 0, c, 0, m, n, k, accumulate) with
        {
            PackedB = (PackedPanels?)prepared,
            Tail = new GemmTail(a2, 0, k2, 1, b2, 0, k2, 1, k2),
        }, this);
    }

    /// <inheritdoc />
    public void MatMulThen(float[] a, float[] b, float[] a2, float[] b2, float[] c, int m, int n, int k, int k2, bool accumulate = false, object? prepared = null) =>
        Gemm.Run(GemmProblem.NN(a, 0, b, 0, c, 0, m, n, k, accumulate) with
        {
            Tail = new GemmTail(a2, 0, k2, 1, b2, 0, 1, n, k2),
            PackedB = (PackedPanels?)prepared,
        }, this);

    /// <inheritdoc />
    public object? PrepareOperand(float[] b, int k, int n) => Gemm.PackWhole(b, n, k, 1, n, this);

    /// <inheritdoc />
    public void MatMul(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false) =>
        Gemm.Run(GemmProblem.NN(a, aOffset, b, bOffset, c, cOffset, m, n, k, accumulate), this);

    /// <inheritdoc />
    public void MatMulTransposedA(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate = false) =>
        Gemm.Run(GemmProblem.TN(a, aOffset, b, bOffset, c, cOffset, m, n, k, accumulate), this);

    private float[]? _scratch;

    /// <summary>A buffer of at least <paramref name="length"/> floats, reused between products.</summary>
    internal float[] Scratch(long length)
    {
        var s = Interlocked.Exchange(ref _scratch, null);
        return s is not null && s.LongLength >= length ? s : new float[length];
    }

    internal void ReturnScratch(float[] buffer) => _scratch = buffer;

    private readonly List<PackedPanels> _freePanels = [];

    /// <summary>A buffer for packed panels of B, reused between products (products run together each hold one).</summary>
    internal PackedPanels RentPanels(long length)
    {
        lock (_freePanels)
        {
            var best = -1;
            for (var i = 0; i < _freePanels.Count; i++)
                if (_freePanels[i].Length >= length && (best < 0 || _freePanels[i].Length < _freePanels[best].Length)) best = i;
            if (best < 0) return PackedPanels.Allocate(length);
            var found = _freePanels[best];
            _freePanels.RemoveAt(best);
            return found;
        }
    }

    internal void ReturnPanels(PackedPanels buffer)
    {
        lock (_freePanels) _freePanels.Add(buffer);
    }

    private static unsafe void Tile(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset,
        int r0, int r1, int c0, int c1, int n, int k, bool accumulate)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            for (var i = r0; i < r1; i++)
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

    /// <summary>Dot product over eight lanes, then their sum (decoding's products and attention scores).</summary>
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
}
