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
    int M, int N, int K, bool Accumulate, PackedPanels? PackedB = null, GemmTail? Tail = null)
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
/// B packed into panels (<see cref="Gemm"/>): <see cref="Length"/> floats from <see cref="Offset"/> of a
/// pinned array, the first on a 64-byte boundary so that the kernels' vector loads of a panel never
/// straddle two cache lines (misaligned, a 6×32 tile ran 13% slower on one core).
/// </summary>
internal sealed class PackedPanels
{
    private PackedPanels(float[] data, int offset, long length) => (Data, Offset, Length) = (data, offset, length);

    public float[] Data { get; }
    public int Offset { get; }
    public long Length { get; }

    /// <summary>Floats of <paramref name="data"/> already in panel layout, read in place (not aligned).</summary>
    public static PackedPanels View(float[] data, long offset, long length) => new(data, checked((int)offset), length);

    /// <summary>Zeroed room for <paramref name="length"/> floats.</summary>
    public static unsafe PackedPanels Allocate(long length)
    {
        // Pinned: the object heap for pinned arrays never moves them, so the offset stays right.
        var data = GC.AllocateArray<float>(checked((int)(length + 16)), pinned: true);
        var address = (nuint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(data));
        return new PackedPanels(data, (int)((64 - address % 64) % 64 / sizeof(float)), length);
    }
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
    [ThreadStatic] private static PackedPanels? _panels;
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
            if (!be.Defer(pr)) Blocked(pr, be, 1);
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
        var shape = GemmKernels.ShapeFor(pr.N, pr.PackedB is not null);
        var step = 4 * shape.Width;
        for (var j = j0; j < j1; j += step)
            Task(pr, shape, pr.COffset, 0, pr.M, j, Math.Min(j1, j + step), 0, pr.K);
    }

    /// <summary>
    /// The product split into tasks of row blocks × column blocks (× k-segments, each writing its own
    /// m×n slab of C). Task sizes follow the thread count for load balance (<see cref="Partition"/>);
    /// results do not.
    /// </summary>
    private static void Blocked(GemmProblem pr, CpuBackend be, int segments)
    {
        var plan = Plan(pr, be, segments, out var packJobs);
        if (packJobs > 0) be.For(packJobs, q => PackAll(plan.Problem, plan.Shape, plan.Problem.PackedB!, q, q + 1));
        be.For(plan.Tasks, plan.Run);
        plan.Release(be);
    }

    /// <summary>
    /// Independent products (none reads what another writes) in one parallel loop: their packing in
    /// one loop (if any B is large), then all their tasks in another, rather than two loops each.
    /// Every product's tasks are the ones it would run alone, so the bytes are the same.
    /// </summary>
    public static void Together(IReadOnlyList<GemmProblem> problems, CpuBackend be)
    {
        if (problems.Count == 1)
        {
            Blocked(problems[0], be, 1);
            return;
        }
        var plans = new BlockPlan[problems.Count];
        var packStarts = new int[plans.Length + 1];
        var taskStarts = new int[plans.Length + 1];
        for (var i = 0; i < plans.Length; i++)
        {
            plans[i] = Plan(problems[i], be, 1, out var packJobs);
            packStarts[i + 1] = packStarts[i] + packJobs;
            taskStarts[i + 1] = taskStarts[i] + plans[i].Tasks;
        }
        if (packStarts[^1] > 0)
            be.For(packStarts[^1], job =>
            {
                var i = Owner(packStarts, job);
                var q = job - packStarts[i];
                PackAll(plans[i].Problem, plans[i].Shape, plans[i].Problem.PackedB!, q, q + 1);
            });
        be.For(taskStarts[^1], task =>
        {
            var i = Owner(taskStarts, task);
            plans[i].Run(task - taskStarts[i]);
        });
        foreach (var plan in plans) plan.Release(be);
    }

    /// <summary>The product whose range of <paramref name="starts"/> holds <paramref name="index"/>.</summary>
    private static int Owner(int[] starts, int index)
    {
        var i = Array.BinarySearch(starts, index);
        if (i < 0) return ~i - 1;
        // Products with no jobs share a start: the owner is the last of them.
        while (i + 1 < starts.Length - 1 && starts[i + 1] == index) i++;
        return i;
    }

    /// <summary>How one product is split into tasks, and the packed B its tasks read.</summary>
    private sealed class BlockPlan(GemmProblem problem, GemmKernels.Shape shape, int segments, int tilesPerTask, int panelsPerTask,
        int rowBlocks, int colBlocks, PackedPanels? shared, PackedPanels? tailPanels)
    {
        public GemmProblem Problem { get; } = problem;
        public GemmKernels.Shape Shape { get; } = shape;
        public int Tasks => segments * rowBlocks * colBlocks;

        public void Run(int task)
        {
            var pr = Problem;
            var seg = task / (rowBlocks * colBlocks);
            var rb = task % (rowBlocks * colBlocks) / colBlocks;
            var cb = task % colBlocks;
            var segLength = (pr.K + segments - 1) / segments;
            var k0 = seg * segLength;
            var k1 = Math.Min(pr.K, k0 + segLength);
            var i0 = rb * tilesPerTask * Shape.Rows;
            var i1 = Math.Min(pr.M, i0 + tilesPerTask * Shape.Rows);
            var j0 = cb * panelsPerTask * Shape.Width;
            var j1 = Math.Min(pr.N, j0 + panelsPerTask * Shape.Width);
            var cOffset = pr.COffset + seg * (long)pr.M * pr.N;
            Task(pr, Shape, cOffset, i0, i1, j0, j1, k0, k1, tailPanels);
        }

        public void Release(CpuBackend be)
        {
            if (shared is not null) be.ReturnPanels(shared);
            if (tailPanels is not null) be.ReturnPanels(tailPanels);
        }
    }

    /// <summary>
    /// Partitions <paramref name="pr"/> and packs what its tasks share: B when several row blocks would
    /// each pack the same panels (on this thread when small; otherwise <paramref name="packJobs"/> panels
    /// are left for a parallel loop to pack), and a tail's B.
    /// </summary>
    private static BlockPlan Plan(GemmProblem pr, CpuBackend be, int segments, out int packJobs)
    {
        packJobs = 0;
        var shape = GemmKernels.ShapeFor(pr.N, pr.PackedB is not null);
        var nr = shape.Width;
        var rowTiles = (pr.M + shape.Rows - 1) / shape.Rows;
        var panels = (pr.N + nr - 1) / nr;
        var (tilesPerTask, panelsPerTask) = Partition(rowTiles, panels, segments, be.Threads);
        // A few rows (a LoRA factor's gradient, 16 × features): one row block, so that each task packs only
        // its own panels of B and no loop packs all of B first.
        if (rowTiles <= 4 && pr.PackedB is null) (tilesPerTask, panelsPerTask) = (rowTiles, Partition(1, panels, segments, be.Threads).PanelsPerTask);
        var rowBlocks = (rowTiles + tilesPerTask - 1) / tilesPerTask;
        var colBlocks = (panels + panelsPerTask - 1) / panelsPerTask;
        PackedPanels? shared = null;
        var packSize = (long)panels * nr * pr.K;
        if (pr.PackedB is null && pr.N == nr && pr.BColStride == 1 && pr.BKStride == nr)
        {
            // B is already one panel (a rank-wide LoRA factor or hidden state, row-major): read in place.
            pr = pr with { PackedB = PackedPanels.View(pr.B, pr.BOffset, packSize) };
        }
        else if (pr.PackedB is null && rowBlocks > 1 && packSize <= MaxSharedPack)
        {
            shared = be.RentPanels(packSize);
            pr = pr with { PackedB = shared };
            if (packSize <= SerialPack) PackAll(pr, shape, shared, 0, panels);
            else packJobs = panels;
        }
        // The tail's B is small (a LoRA factor): packed once here, on the calling thread.
        PackedPanels? tailPanels = null;
        if (pr.Tail is { } tail)
        {
            tailPanels = be.RentPanels((long)panels * nr * tail.K);
            unsafe
            {
                fixed (float* tb = tail.B, tpData = tailPanels.Data)
                {
                    var tp = tpData + tailPanels.Offset;
                    for (var q = 0; q < panels; q++)
                        Pack(tb + tail.BOffset, tail.BColStride, tail.BKStride, q * nr, Math.Min(nr, pr.N - q * nr), tail.K, tp + (long)q * nr * tail.K, nr);
                }
            }
        }
        return new BlockPlan(pr, shape, segments, tilesPerTask, panelsPerTask, rowBlocks, colBlocks, shared, tailPanels);
    }

    // B up to this many floats (128 KiB) is packed on the calling thread rather than in a parallel loop of its own.
    private const long SerialPack = 32 * 1024;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int, int, int), (int, int)> Partitions = new();

    /// <summary>
    /// Register tiles of A and panels of B per task. Threads take tasks in turn as they come free, so a
    /// loop ends at most one task after the work divided by the threads: the cost of a choice, in register
    /// tiles × panels, is (all the work + every task's overhead) / threads + the largest task, where a
    /// task's overhead is (its tiles + its panels) / 4 + 1 (re-reading A and B, taking the task). Small
    /// tasks also keep a loop short when one thread is held up (a shared or busy machine), which whole
    /// waves of large tasks do not. Depends on the shape and the thread count only; results depend on neither.
    /// </summary>
    internal static (int TilesPerTask, int PanelsPerTask) Partition(int rowTiles, int panels, int segments, int threads) =>
        Partitions.GetOrAdd((rowTiles, panels, segments, threads), key =>
        {
            var (r, q, s, t) = key;
            (int, int) best = (1, 1);
            var bestCost = double.MaxValue;
            for (var tiles = 1; tiles <= Math.Min(r, 16); tiles++)
            {
                var rowBlocks = (r + tiles - 1) / tiles;
                // Equal row blocks only: a larger count with the same blocks is never better.
                if (tiles > 1 && (r + tiles - 2) / (tiles - 1) == rowBlocks) continue;
                for (var width = 1; width <= Math.Min(q, 8); width++)
                {
                    var colBlocks = (q + width - 1) / width;
                    if (width > 1 && (q + width - 2) / (width - 1) == colBlocks) continue;
                    var tasks = (long)s * rowBlocks * colBlocks;
                    var overhead = (tiles + width) / 4.0 + 1;
                    var cost = ((double)s * r * q + tasks * overhead) / t + tiles * width + overhead;
                    if (cost < bestCost - 1e-9) (bestCost, best) = (cost, (tiles, width));
                }
            }
            return best;
        });

    /// <summary>Panels <paramref name="q0"/>..<paramref name="q1"/> of B over its whole k (the layout of <see cref="GemmProblem.PackedB"/>).</summary>
    private static unsafe void PackAll(in GemmProblem pr, GemmKernels.Shape shape, PackedPanels packed, int q0, int q1)
    {
        var nr = shape.Width;
        fixed (float* pb = pr.B, data = packed.Data)
        {
            var pp = data + packed.Offset;
            for (var q = q0; q < q1; q++)
                Pack(pb + pr.BOffset, pr.BColStride, pr.BKStride, q * nr, Math.Min(nr, pr.N - q * nr), pr.K, pp + (long)q * nr * pr.K, nr);
        }
    }

    private static unsafe void Task(in GemmProblem pr, GemmKernels.Shape shape, long cOffset, int i0, int i1, int j0, int j1, int k0, int k1, PackedPanels? tailPanels = null)
    {
        var nr = shape.Width;
        var panelCount = (j1 - j0 + nr - 1) / nr;
        var need = panelCount * nr * KBlock;
        if (pr.PackedB is null && (_panels is null || _panels.Length < need)) _panels = PackedPanels.Allocate(need);
        var packed = pr.PackedB ?? _panels!;
        fixed (float* a = pr.A, b = pr.B, c = pr.C, data = packed.Data)
        {
            var pk = data + packed.Offset;
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
                    for (var i = i0; i < i1; i += shape.Rows)
                        GemmKernels.Tile(shape, a + pr.AOffset + i * pr.ARowStride + p0 * pr.AKStride, pr.ARowStride, pr.AKStride,
                            Math.Min(shape.Rows, i1 - i), panel, kc, c + cOffset + (long)i * pr.Ldc + jq, pr.Ldc, Math.Min(nr, j1 - jq), load);
                }
            }
        }
        if (pr.Tail is { } t && tailPanels is not null) TailTask(t, shape, tailPanels, pr, i0, i1, j0, j1);
    }

    /// <summary>The tail's chains continued from C over this task's tiles (tail panels packed over the tail's whole k).</summary>
    private static unsafe void TailTask(GemmTail t, GemmKernels.Shape shape, PackedPanels tailPanels, in GemmProblem pr, int i0, int i1, int j0, int j1)
    {
        var nr = shape.Width;
        fixed (float* a = t.A, data = tailPanels.Data, c = pr.C)
        {
            var pk = data + tailPanels.Offset;
            for (var p0 = 0; p0 < t.K; p0 += KBlock)
            {
                var kc = Math.Min(KBlock, t.K - p0);
                for (var jq = j0; jq < j1; jq += nr)
                {
                    var panel = pk + ((long)(jq / nr) * t.K + p0) * nr;
                    for (var i = i0; i < i1; i += shape.Rows)
                        GemmKernels.Tile(shape, a + t.AOffset + i * t.ARowStride + p0 * t.AKStride, t.ARowStride, t.AKStride,
                            Math.Min(shape.Rows, i1 - i), panel, kc, c + pr.COffset + (long)i * pr.Ldc + jq, pr.Ldc, Math.Min(nr, j1 - jq), true);
                }
            }
        }
    }

    /// <summary>
    /// B(p, j) = b[j·colStride + p·kStride] (n columns, k deep: B[n×k] of <see cref="GemmProblem.NT"/> with
    /// colStride k, B[k×n] of <see cref="GemmProblem.NN"/> with kStride n) as panels over its whole k, for
    /// products that reuse it.
    /// </summary>
    public static unsafe PackedPanels PackWhole(float[] b, int n, int k, long colStride, long kStride, CpuBackend be)
    {
        var nr = GemmKernels.PanelWidth;
        var panels = (n + nr - 1) / nr;
        var packed = PackedPanels.Allocate((long)panels * nr * k);
        be.For(panels, q =>
        {
            fixed (float* pb = b, data = packed.Data)
                Pack(pb, colStride, kStride, q * nr, Math.Min(nr, n - q * nr), k, data + packed.Offset + (long)q * nr * k, nr);
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
