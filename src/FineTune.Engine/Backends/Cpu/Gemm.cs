namespace FineTune.Engine.Backends.Cpu;

/// <summary>
/// One matrix product C[m×n] (+)= A·B over strided views: A(i, p) = a[aOffset + i·aRowStride + p·aKStride],
/// B(p, j) = b[bOffset + j·bColStride + p·bKStride], C(i, j) = c[cOffset + i·ldc + j]. The three layouts the
/// graph needs (A·Bᵀ, A·B, Aᵀ·B) are stride choices, so no operand is ever transposed in memory.
/// </summary>
internal readonly record struct GemmProblem(
    float[] A, long AOffset, long ARowStride, long AKStride,
    float[] B, long BOffset, long BColStride, long BKStride,
    float[] C, long COffset, int Ldc,
    int M, int N, int K, bool Accumulate, float[]? PackedB = null, GemmTail? Tail = null)
{
    /// <summary>A·Bᵀ with A[m×k] and B[n×k] row-major.</summary>
    public static GemmProblem NT(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate) =>
        new(a, aOffset, k, 1, b, bOffset, k, 1, c, cOffset, n, m, n, k, accumulate);

    /// <summary>A·B with A[m×k] and B[k×n] row-major.</summary>
    public static GemmProblem NN(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate) =>
        new(a, aOffset, k, 1, b, bOffset, 1, n, c, cOffset, n, m, n, k, accumulate);

    /// <summary>Aᵀ·B with A[k×m] and B[k×n] row-major.</summary>
    public static GemmProblem TN(float[] a, int aOffset, float[] b, int bOffset, float[] c, int cOffset, int m, int n, int k, bool accumulate) =>
        new(a, aOffset, 1, m, b, bOffset, 1, n, c, cOffset, n, m, n, k, accumulate);
}

/// <summary>
/// A second product added to the first's C by continuing each element's chain over its own k:
/// C(i, j) = chain over the first's p, then over A2(i, p)·B2(p, j) for p = 0..K−1 — the same bytes as
/// running it afterwards with accumulate, without a second pass over C (a LoRA path after its frozen weight).
/// </summary>
internal sealed record GemmTail(float[] A, long AOffset, long ARowStride, long AKStride, float[] B, long BOffset, long BColStride, long BKStride, int K)
{
    /// <summary>The tail as a product of its own that accumulates into <paramref name="first"/>'s C.</summary>
    public GemmProblem After(in GemmProblem first) =>
        new(A, AOffset, ARowStride, AKStride, B, BOffset, BColStride, BKStride, first.C, first.COffset, first.Ldc, first.M, first.N, K, true);
}

/// <summary>
/// Blocked, packed matrix products (the GotoBLAS/BLIS structure): B is packed in k-blocks into panels
/// as wide as two vectors, and a 6-row register tile of C accumulates over each panel with fused
/// multiply-adds. Every element of C is one fused multiply-add chain over p = 0..k−1 in order (started
/// from the old C when accumulating), whatever the blocking, the vector width (AVX2, AVX-512 or scalar)
/// or the number of threads — so the bytes depend on none of them. Only products with a long k and a
/// small C are split along k (into a number of segments fixed by the shape alone) so that all threads
/// have work; those segments' partial products are then added in segment order.
/// </summary>
internal static class Gemm
{
    private const int KBlock = 256;
    [ThreadStatic] private static float[]? _panels;
    // Larger B (a whole vocabulary's head, an 8B model's MLP weight) is packed per task as before, rather than held whole in a scratch buffer.
    private const long MaxSharedPack = 16L << 20;

    /// <summary>How many k-segments a product is summed in; a function of the shape only, so bytes never depend on threads.</summary>
    internal static int Segments(int m, int n, int k) =>
        k >= 4096 && (long)m * n <= 64 * 1024 ? Math.Min(64, k / 2048) : 1;

    public static void Run(in GemmProblem problem, CpuBackend be)
    {
        var pr = problem;
        if (pr.M == 0 || pr.N == 0) return;
        var segments = Segments(pr.M, pr.N, pr.K);
        if (pr.Tail is { } tail && (segments > 1 || tail.K == 0 || pr.K == 0))
        {
            // The first product is summed in segments: its tail follows as a product of its own.
            Run(pr with { Tail = null }, be);
            if (tail.K > 0) Run(tail.After(pr), be);
            return;
        }
        if (segments == 1)
        {
            Blocked(pr, be, 1);
            return;
        }
        var size = (long)pr.M * pr.N;
        var partial = be.Scratch(segments * size);
        Blocked(pr with { C = partial, COffset = 0, Ldc = pr.N, Accumulate = false }, be, segments);
        // Fixed order: C (+)= ((s0 + s1) + s2) + … for every element.
        be.For(pr.M, i =>
        {
            var dst = pr.C.AsSpan((int)(pr.COffset + (long)i * pr.Ldc), pr.N);
            for (var j = 0; j < pr.N; j++)
            {
                var s = partial[i * pr.N + j];
                for (var seg = 1; seg < segments; seg++) s += partial[seg * size + i * pr.N + j];
                dst[j] = pr.Accumulate ? dst[j] + s : s;
            }
        });
        be.ReturnScratch(partial);
    }

    /// <summary>The whole product on the calling thread, as one chain per element (no k-segments): for small products inside a parallel task.</summary>
    public static void Serial(in GemmProblem pr) => Serial(pr, 0, pr.N);

    /// <summary>Columns <paramref name="j0"/>..<paramref name="j1"/> of the product on the calling thread; <paramref name="j0"/> is a multiple of <see cref="GemmKernels.PanelWidth"/>.</summary>
    public static void Serial(in GemmProblem pr, int j0, int j1)
    {
        if (pr.Tail is not null) throw new ArgumentException("A fused tail runs through Run, which packs it.", nameof(pr));
        if (pr.M == 0 || j1 <= j0) return;
        var step = 4 * GemmKernels.PanelWidth;
        for (var j = j0; j < j1; j += step)
            Task(pr, pr.COffset, 0, pr.M, j, Math.Min(j1, j + step), 0, pr.K);
    }

    /// <summary>
    /// The product split into tasks of row blocks × column blocks (× k-segments, each writing its own
    /// m×n slab of C). Task sizes follow the thread count for load balance; results do not.
    /// </summary>
    private static void Blocked(GemmProblem pr, CpuBackend be, int segments)
    {
        var nr = GemmKernels.PanelWidth;
        var rowTiles = (pr.M + GemmKernels.Rows - 1) / GemmKernels.Rows;
        var panels = (pr.N + nr - 1) / nr;
        int tilesPerTask = 8, panelsPerTask = 4;
        long Tasks() => (long)segments * ((rowTiles + tilesPerTask - 1) / tilesPerTask) * ((panels + panelsPerTask - 1) / panelsPerTask);
        while (Tasks() < 3L * be.Threads && (tilesPerTask > 1 || panelsPerTask > 1))
        {
            if (tilesPerTask >= panelsPerTask && tilesPerTask > 1) tilesPerTask /= 2;
            else panelsPerTask /= 2;
        }
        var rowBlocks = (rowTiles + tilesPerTask - 1) / tilesPerTask;
        var colBlocks = (panels + panelsPerTask - 1) / panelsPerTask;
        var segLength = (pr.K + segments - 1) / segments;
        // Several row blocks would each pack the same panels of B: pack all of B once, in parallel, instead.
        float[]? shared = null;
        if (pr.PackedB is null && rowBlocks > 1 && (long)panels * nr * pr.K <= MaxSharedPack)
        {
            shared = be.PanelScratch((long)panels * nr * pr.K);
            PackAll(pr, shared, be);
            pr = pr with { PackedB = shared };
        }
        // The tail's B is small (a LoRA factor): packed once here, on the calling thread.
        float[]? tailPanels = null;
        if (pr.Tail is { } tail)
        {
            tailPanels = be.TailScratch((long)panels * nr * tail.K);
            unsafe
            {
                fixed (float* tb = tail.B, tp = tailPanels)
                    for (var q = 0; q < panels; q++)
                        Pack(tb + tail.BOffset, tail.BColStride, tail.BKStride, q * nr, Math.Min(nr, pr.N - q * nr), tail.K, tp + (long)q * nr * tail.K, nr);
            }
        }
        be.For(segments * rowBlocks * colBlocks, task =>
        {
            var seg = task / (rowBlocks * colBlocks);
            var rb = task % (rowBlocks * colBlocks) / colBlocks;
            var cb = task % colBlocks;
            var k0 = seg * segLength;
            var k1 = Math.Min(pr.K, k0 + segLength);
            var i0 = rb * tilesPerTask * GemmKernels.Rows;
            var i1 = Math.Min(pr.M, i0 + tilesPerTask * GemmKernels.Rows);
            var j0 = cb * panelsPerTask * nr;
            var j1 = Math.Min(pr.N, j0 + panelsPerTask * nr);
            var cOffset = pr.COffset + seg * (long)pr.M * pr.N;
            Task(pr, cOffset, i0, i1, j0, j1, k0, k1, tailPanels);
        });
        if (shared is not null) be.ReturnPanelScratch(shared);
        if (tailPanels is not null) be.ReturnTailScratch(tailPanels);
    }

    /// <summary>All of B as panels over its whole k (the layout of <see cref="GemmProblem.PackedB"/>), one task per panel.</summary>
    private static unsafe void PackAll(GemmProblem pr, float[] packed, CpuBackend be)
    {
        var nr = GemmKernels.PanelWidth;
        var panels = (pr.N + nr - 1) / nr;
        be.For(panels, q =>
        {
            fixed (float* pb = pr.B, pp = packed)
                Pack(pb + pr.BOffset, pr.BColStride, pr.BKStride, q * nr, Math.Min(nr, pr.N - q * nr), pr.K, pp + (long)q * nr * pr.K, nr);
        });
    }

    private static unsafe void Task(in GemmProblem pr, long cOffset, int i0, int i1, int j0, int j1, int k0, int k1, float[]? tailPanels = null)
    {
        var nr = GemmKernels.PanelWidth;
        var panelCount = (j1 - j0 + nr - 1) / nr;
        var need = panelCount * nr * KBlock;
        if (pr.PackedB is null && (_panels is null || _panels.Length < need)) _panels = new float[need];
        var packed = pr.PackedB ?? _panels!;
        fixed (float* a = pr.A, b = pr.B, c = pr.C, pk = packed)
        {
            if (k1 <= k0)
            {
                // Empty k-range: C is zero (or unchanged when accumulating).
                if (!pr.Accumulate)
                    for (var i = i0; i < i1; i++) new Span<float>(c + cOffset + (long)i * pr.Ldc + j0, j1 - j0).Clear();
                return;
            }
            for (var p0 = k0; p0 < k1; p0 += KBlock)
            {
                var kc = Math.Min(KBlock, k1 - p0);
                // Panel q of this k-block: packed here, or read in place from B packed once for its whole k.
                var prePacked = pr.PackedB is not null;
                var panelBase = ((long)(j0 / nr) * pr.K + p0) * nr;
                var panelStride = prePacked ? (long)pr.K * nr : (long)kc * nr;
                long PanelOffset(int q) => prePacked ? panelBase + q * panelStride : q * panelStride;
                if (!prePacked)
                    for (var q = 0; q < panelCount; q++)
                    {
                        var jq = j0 + q * nr;
                        Pack(b + pr.BOffset + p0 * pr.BKStride, pr.BColStride, pr.BKStride, jq, Math.Min(nr, j1 - jq), kc, pk + PanelOffset(q), nr);
                    }
                var load = pr.Accumulate || p0 > k0;
                // One panel of B (kc × nr) stays in L1 while the row tiles of A stream past it from L2.
                for (var q = 0; q < panelCount; q++)
                {
                    var jq = j0 + q * nr;
                    var panel = pk + PanelOffset(q);
                    for (var i = i0; i < i1; i += GemmKernels.Rows)
                        GemmKernels.Tile(a + pr.AOffset + i * pr.ARowStride + p0 * pr.AKStride, pr.ARowStride, pr.AKStride,
                            Math.Min(GemmKernels.Rows, i1 - i), panel, kc, c + cOffset + (long)i * pr.Ldc + jq, pr.Ldc, Math.Min(nr, j1 - jq), load);
                }
            }
        }
        if (pr.Tail is { } t && tailPanels is not null) TailTask(t, tailPanels, pr, i0, i1, j0, j1);
    }

    /// <summary>The tail's chains continued from C over this task's tiles (tail panels packed over the tail's whole k).</summary>
    private static unsafe void TailTask(GemmTail t, float[] tailPanels, in GemmProblem pr, int i0, int i1, int j0, int j1)
    {
        var nr = GemmKernels.PanelWidth;
        fixed (float* a = t.A, pk = tailPanels, c = pr.C)
        {
            for (var p0 = 0; p0 < t.K; p0 += KBlock)
            {
                var kc = Math.Min(KBlock, t.K - p0);
                for (var jq = j0; jq < j1; jq += nr)
                {
                    var panel = pk + ((long)(jq / nr) * t.K + p0) * nr;
                    for (var i = i0; i < i1; i += GemmKernels.Rows)
                        GemmKernels.Tile(a + t.AOffset + i * t.ARowStride + p0 * t.AKStride, t.ARowStride, t.AKStride,
                            Math.Min(GemmKernels.Rows, i1 - i), panel, kc, c + pr.COffset + (long)i * pr.Ldc + jq, pr.Ldc, Math.Min(nr, j1 - jq), true);
                }
            }
        }
    }

    /// <summary>B[n×k] (the B of <see cref="GemmProblem.NT"/>) as panels over its whole k, for products that reuse it.</summary>
    public static unsafe float[] PackWhole(float[] b, int n, int k, CpuBackend be)
    {
        var nr = GemmKernels.PanelWidth;
        var panels = (n + nr - 1) / nr;
        var packed = new float[(long)panels * nr * k];
        be.For(panels, q =>
        {
            fixed (float* pb = b, pp = packed)
                Pack(pb, k, 1, q * nr, Math.Min(nr, n - q * nr), k, pp + (long)q * nr * k, nr);
        });
        return packed;
    }

    /// <summary>panel[p·nr + jj] = B(p, j + jj) for jj below <paramref name="cols"/>, zero beyond.</summary>
    private static unsafe void Pack(float* b, long colStride, long kStride, int j, int cols, int kc, float* panel, int nr)
    {
        if (kStride == 1)
        {
            for (var jj = 0; jj < cols; jj++)
            {
                var src = b + (j + jj) * colStride;
                for (var p = 0; p < kc; p++) panel[p * nr + jj] = src[p];
            }
        }
        else
        {
            for (var p = 0; p < kc; p++)
            {
                var src = b + p * kStride + j * colStride;
                var dst = panel + p * nr;
                if (colStride == 1) Buffer.MemoryCopy(src, dst, cols * sizeof(float), cols * sizeof(float));
                else for (var jj = 0; jj < cols; jj++) dst[jj] = src[jj * colStride];
            }
        }
        if (cols < nr)
            for (var p = 0; p < kc; p++) new Span<float>(panel + p * nr + cols, nr - cols).Clear();
    }
}
