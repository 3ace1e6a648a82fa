using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FineTune.Engine.Backends.Cuda.Compilation;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>One LoRA weight gradient: <c>C[M, N] (fp32) += Aᵀ·B</c>, A <c>[K, M]</c> and B <c>[K, N]</c> row-major bf16 with row strides <c>Lda</c>, <c>Ldb</c>.</summary>
public readonly record struct GradientProduct(ulong C, ulong A, int Lda, ulong B, int Ldb, int M, int N, int K);

/// <summary>
/// Launcher for <c>lora_grad.cu</c>: LoRA weight gradients (dB += dYᵀ·h, dA += gᵀ·x; K is the batch's tokens), up to four
/// in one launch that splits the tokens over blocks and sums the slices in a fixed order, where cuBLASLt runs a split-K
/// product and a reduction kernel for each.
/// </summary>
public sealed class LoraGradientKernels(CudaDevice device, KernelCompiler compiler) : IDisposable
{
    /// <summary>Gradient rows (of the wide side) per block: <c>PT</c> in the kernel.</summary>
    public const int TileRows = 128;

    /// <summary>Gradients one launch takes (<c>MAX_PRODUCTS</c>).</summary>
    public const int MaxProducts = 4;

    /// <summary>Bytes of fp32 partial tiles one launch may fill.</summary>
    public const long PartialBytes = 8L << 20;

    /// <summary>Tickets one launch may use (one per split tile and per group of slices).</summary>
    public const int TicketCount = 4096;

    /// <summary>The workspace a model holds for these launches: the partial tiles, then the tickets (zeroed once).</summary>
    public const long WorkspaceBytes = PartialBytes + TicketCount * 4L;

    private const int Threads = 256, TokensPerStage = 64, Stages = 4;

    // Slices summed by the last block of their group (GROUP in the kernel); at most this many groups.
    private const int Group = 8;

    // A slice streams at least this many tokens, so its partial tile is small next to what it read.
    private const int MinSliceTokens = 256;

    private CudaModule? _module;

    /// <summary>How one gradient is split: q columns per block, its tiles, its token slices and their length.</summary>
    public readonly record struct Split(int QTile, int PTiles, int QTiles, int Slices, int SliceTokens)
    {
        /// <summary>Blocks of the launch this gradient takes.</summary>
        public int Blocks => PTiles * QTiles * Slices;

        /// <summary>Floats of partial tiles it fills (none unsplit).</summary>
        public long PartialFloats => Slices == 1 ? 0 : (long)PTiles * QTiles * (Slices + Groups(Slices)) * TileRows * QTile;

        /// <summary>Tickets it takes (none unsplit).</summary>
        public int Tickets => Slices == 1 ? 0 : PTiles * QTiles * (1 + (int)Groups(Slices));
    }

    /// <summary>The q columns per block for a narrow side of <paramref name="q"/> (one of the kernel's entry points).</summary>
    public static int QTileFor(int q) => q <= 16 ? 16 : q <= 32 ? 32 : q <= 48 ? 48 : 64;

    /// <summary>
    /// The split of a gradient whose wide side has <paramref name="p"/> columns and narrow side <paramref name="q"/>
    /// over <paramref name="k"/> tokens, given <paramref name="slots"/> blocks of the GPU to fill (two per SM, or the
    /// gradient's share of them in a launch of several): slices of at least <see cref="MinSliceTokens"/> tokens, no more
    /// blocks than slots (so no second wave runs nearly empty), at most <see cref="Group"/> groups of <see cref="Group"/>,
    /// the partials and tickets within <paramref name="partialBytes"/> and <paramref name="tickets"/>. A function of the
    /// shape and the device alone, so the summation order, and with it every bit of the result, is too.
    /// </summary>
    public static Split Plan(int p, int q, int k, int slots, long partialBytes = PartialBytes, int tickets = TicketCount)
    {
        var qTile = QTileFor(q);
        int pTiles = (p + TileRows - 1) / TileRows, qTiles = (q + qTile - 1) / qTile;
        var tiles = (long)pTiles * qTiles;
        var tileBytes = (long)TileRows * qTile * 4;
        long slices = Math.Clamp(Math.Min(slots / tiles, k / MinSliceTokens), 1, Group * Group);
        while (slices > 1 && (tiles * (slices + Groups(slices)) * tileBytes > partialBytes || tiles * (1 + Groups(slices)) > tickets)) slices--;
        // Slices a whole number of stages long; the last one takes what is left.
        var stage = TokensPerStage;
        var sliceTokens = (int)(((k + slices - 1) / slices + stage - 1) / stage * stage);
        return new Split(qTile, pTiles, qTiles, (k + sliceTokens - 1) / sliceTokens, sliceTokens);
    }

    private static long Groups(long slices) => (slices + Group - 1) / Group;

    /// <summary>
    /// Whether the kernel's 16-byte loads fit <paramref name="g"/>: sizes and strides multiples of 8, addresses 16-byte aligned.
    /// </summary>
    public static bool Takes(GradientProduct g) =>
        g.M % 8 == 0 && g.N % 8 == 0 && g.Lda % 8 == 0 && g.Ldb % 8 == 0 && g.A % 16 == 0 && g.B % 16 == 0 && g.K > 0;

    /// <summary>
    /// Queues every gradient of <paramref name="products"/> the kernel <see cref="Takes"/>, those with the same q tile
    /// together, up to <see cref="MaxProducts"/> a launch; <paramref name="workspace"/> is a model's <see cref="WorkspaceBytes"/>.
    /// Returns the others, queuing nothing for them (the caller runs them on cuBLASLt).
    /// </summary>
    public List<GradientProduct> Accumulate(ulong workspace, IReadOnlyList<GradientProduct> products)
    {
        var refused = new List<GradientProduct>();
        var byTile = new List<(int QTile, List<GradientProduct> Items)>();
        foreach (var g in products)
        {
            if (!Takes(g))
            {
                refused.Add(g);
                continue;
            }
            var qTile = QTileFor(Math.Min(g.M, g.N));
            var bucket = byTile.FindIndex(b => b.QTile == qTile);
            if (bucket < 0) byTile.Add((qTile, [g]));
            else byTile[bucket].Items.Add(g);
        }
        foreach (var (qTile, items) in byTile)
            for (var i = 0; i < items.Count; i += MaxProducts)
                Launch(workspace, qTile, items.GetRange(i, Math.Min(MaxProducts, items.Count - i)));
        return refused;
    }

    /// <summary>Queues one gradient; false, queuing nothing, where the kernel does not take it.</summary>
    public bool TryAccumulate(ulong workspace, GradientProduct product) => Accumulate(workspace, [product]).Count == 0;

    private void Launch(ulong workspace, int qTile, List<GradientProduct> items)
    {
        var batch = new Batch { Partials = workspace, Tickets = workspace + (ulong)PartialBytes, Count = items.Count };
        var slots = 2 * device.MultiprocessorCount;
        double total = items.Sum(g => (double)g.K * (g.M + g.N));
        long partials = 0;
        int tickets = 0, blocks = 0;
        for (var i = 0; i < items.Count; i++)
        {
            var g = items[i];
            // The wide side is X, whose columns the blocks' tiles run over; the gradient is [M, N] either way.
            var wideA = g.M >= g.N;
            int p = wideA ? g.M : g.N, q = wideA ? g.N : g.M;
            // Each gradient gets a share of the GPU's blocks by the bytes it reads, and an equal share of the workspace.
            var share = (int)Math.Max(1, slots * (g.K * (double)(g.M + g.N)) / total);
            var split = Plan(p, q, g.K, share, PartialBytes / items.Count, TicketCount / items.Count);
            batch.Products[i] = new Product
            {
                C = g.C, X = wideA ? g.A : g.B, Y = wideA ? g.B : g.A,
                Cp = wideA ? g.N : 1, Cq = wideA ? 1 : g.N, Ldx = wideA ? g.Lda : g.Ldb, Ldy = wideA ? g.Ldb : g.Lda,
                Partials = partials, P = p, Q = q, K = g.K, SliceLen = split.SliceTokens, Slices = split.Slices,
                QTiles = split.QTiles, PTiles = split.PTiles, BlockStart = blocks, Tickets = tickets,
            };
            partials += split.PartialFloats;
            tickets += split.Tickets;
            blocks += split.Blocks;
        }
        var shared = Stages * TokensPerStage * ((TileRows + 8) + (qTile + 8)) * 2;
        Kernel($"lora_grad_q{qTile}").LaunchWithStruct((blocks, 1, 1), Threads, shared, batch);
    }

    private CudaKernel Kernel(string entry) => (_module ??= compiler.Load("lora_grad.cu")).Kernel(entry);

    public void Dispose() => _module?.Dispose();

    // The kernel's GradProduct and GradBatch, field for field.
    [StructLayout(LayoutKind.Sequential)]
    private struct Product
    {
        public ulong C, X, Y;
        public long Cp, Cq, Ldx, Ldy, Partials;
        public int P, Q, K, SliceLen, Slices, QTiles, PTiles, BlockStart, Tickets, Pad;
    }

    [InlineArray(MaxProducts)]
    private struct Products
    {
        private Product _first;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Batch
    {
        public ulong Partials, Tickets;
        public Products Products;
        public int Count;
    }
}
