using FineTune.Engine.Backends.Cuda.Blas;
using FineTune.Engine.Backends.Cuda.Compilation;

namespace FineTune.Engine.Backends.Cuda.Kernels;

/// <summary>The shape of one causal GQA attention call.</summary>
/// <param name="Batch">Sequences in the batch.</param>
/// <param name="SeqLen">Tokens per sequence.</param>
/// <param name="QueryHeads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (divides <paramref name="QueryHeads"/>).</param>
/// <param name="HeadDim">Head dimension (see <see cref="Supports"/>).</param>
public readonly record struct AttentionShape(int Batch, int SeqLen, int QueryHeads, int KvHeads, int HeadDim)
{
    /// <summary>Sliding window: a query sees itself and the <c>Window − 1</c> keys before it (Gemma 3's local layers); 0 for plain causal attention.</summary>
    public int Window { get; init; }

    /// <summary>The factor on q·k when it is not 1/sqrt(head_dim) (Gemma's query_pre_attn_scalar^-0.5).</summary>
    public float? SoftmaxScale { get; init; }

    /// <summary>The softmax scale: <see cref="SoftmaxScale"/>, else 1/sqrt(head_dim).</summary>
    public float Scale => SoftmaxScale ?? 1f / MathF.Sqrt(HeadDim);

    /// <summary>The window the kernels take: a window of at least the sequence length masks nothing, so it becomes the length.</summary>
    internal int KernelWindow => Window > 0 && Window < SeqLen ? Window : SeqLen;

    /// <summary>
    /// 128-column chunks of the output each block owns: above head_dim 128 the accumulators of a
    /// whole head do not fit in registers, so the grid has one block per chunk.
    /// </summary>
    internal int Chunks => HeadDim > 128 ? HeadDim / 128 : 1;

    /// <summary>Head dimensions the kernels take: multiples of 16 up to 128, and 256 (Gemma 3).</summary>
    public static bool Supports(int headDim) => headDim > 0 && headDim % 16 == 0 && (headDim <= 128 || headDim == 256);

    internal void Validate()
    {
        if (Batch <= 0 || SeqLen <= 0 || QueryHeads <= 0 || KvHeads <= 0 || QueryHeads % KvHeads != 0 || Window < 0)
            throw new ArgumentException($"Invalid attention shape {this}: sizes must be positive and KvHeads must divide QueryHeads.");
        if (!Supports(HeadDim))
            throw new ArgumentException($"Head dimension {HeadDim} is not supported: it must be a multiple of 16 up to 128, or 256.");
    }
}

/// <summary>How many query rows one block of the attention forward kernel owns.</summary>
public enum AttentionForwardTiling
{
    /// <summary><see cref="Hopper"/> where it exists (compute capability 9.0, head dimension 64 or 128), else 128 rows (the faster mma.sync tiling measured at head dimensions 64 and 128).</summary>
    Auto,

    /// <summary>64 query rows per block, 16 per warp.</summary>
    Rows64,

    /// <summary>128 query rows per block, 32 per warp (above head dimension 64 the query fragments are re-read from shared memory).</summary>
    Rows128,

    /// <summary>
    /// 128 query rows per block, 64 per Hopper warpgroup issuing wgmma products (attention_hopper.cu):
    /// compute capability 9.0 and head dimension 64 or 128 only (<see cref="CudaKernels.HasHopperAttention"/>).
    /// </summary>
    Hopper,
}

/// <summary>How many rows (keys for dK/dV, queries for dQ) one block of the attention backward kernels owns.</summary>
public enum AttentionBackwardTiling
{
    /// <summary><see cref="Hopper"/> where it exists (compute capability 9.0, head dimension 64 or 128), else 128 rows where the head dimension allows it (at most 64), else 64.</summary>
    Auto,

    /// <summary>64 rows per block, 16 per warp.</summary>
    Rows64,

    /// <summary>128 rows per block, 32 per warp (head dimension at most 64).</summary>
    Rows128,

    /// <summary>128 rows per block, 64 per Hopper warpgroup issuing wgmma products (attention_hopper.cu): compute capability 9.0 and head dimension 64 or 128 only.</summary>
    Hopper,
}

/// <summary>The kernels of the attention backward pass, to time them one at a time (dK/dV and dQ together run as one launch).</summary>
[Flags]
public enum AttentionBackwardStages
{
    /// <summary>delta = rowsum(dO ∘ O).</summary>
    Delta = 1,

    /// <summary>dK and dV, one block per key tile.</summary>
    KeyValue = 2,

    /// <summary>dQ, one block per query tile.</summary>
    Query = 4,

    /// <summary>The whole backward pass.</summary>
    All = Delta | KeyValue | Query,
}

/// <summary>
/// Typed launchers for the NVRTC-compiled kernels (bf16 storage, fp32 math). Arguments are device
/// addresses; layouts are row-major and given per method. Modules compile on first use and are
/// cached on disk by <see cref="KernelCompiler"/>.
/// </summary>
public sealed partial class CudaKernels : IDisposable
{
    private const int Threads = 256;
    private const int AttentionThreads = 128;
    private const int AttentionTile = 64;

    private readonly CudaDevice _device;
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, CudaModule> _modules = new(StringComparer.Ordinal);

    /// <summary>Creates the launchers; nothing is compiled until a kernel is first used.</summary>
    public CudaKernels(CudaDevice device, KernelCompiler compiler, CudaBlas blas)
    {
        _device = device;
        _compiler = compiler;
        Blas = blas;
    }

    /// <summary>The device the kernels run on.</summary>
    public CudaDevice Device => _device;

    /// <summary>The matrix-product library the fused kernels use.</summary>
    public CudaBlas Blas { get; }

    private CudaKernel Kernel(string file, string entry, params string[] defines)
    {
        var key = file + "|" + string.Join(",", defines);
        if (!_modules.TryGetValue(key, out var module))
            _modules[key] = module = _compiler.Load(file, defines);
        return module.Kernel(entry);
    }

    private int GridFor(long work, int perThread = 1)
    {
        var blocks = (work / perThread + Threads - 1) / Threads;
        // Grid-stride loops beyond a few waves only add scheduling work.
        return (int)Math.Clamp(blocks, 1, (long)_device.MultiprocessorCount * 16);
    }

    /// <summary>
    /// y[rows,dim] = residual + x * rstd * (w + weightOffset); rstd[rows] (fp32) is kept for the backward pass.
    /// dim % 8 == 0. weightOffset is 1 for Gemma's stored offsets; residual 0 adds nothing.
    /// y's rows are <paramref name="yStride"/> elements apart (0: dense), its other columns left alone.
    /// </summary>
    public void RmsNormForward(ulong y, ulong rstd, ulong x, ulong weight, int rows, int dim, float eps, float weightOffset = 0, ulong residual = 0, int yStride = 0)
    {
        RequireMultipleOf8(dim, nameof(dim));
        yStride = yStride == 0 ? dim : yStride;
        if (yStride < dim) throw new ArgumentOutOfRangeException(nameof(yStride), "y's row stride is shorter than its row.");
        RequireMultipleOf8(yStride, nameof(yStride));
        if (NormRowsPerWarp(dim) is { } vpl)
            Kernel("norm.cu", "rmsnorm_forward_rows", $"NORM_VPL={vpl}").Launch(((rows + NormRowsPerBlock - 1) / NormRowsPerBlock, 1, 1), 32 * NormRowsPerBlock, 0,
                y, rstd, x, weight, rows, dim, eps, weightOffset, residual, yStride);
        else
            Kernel("norm.cu", "rmsnorm_forward").Launch((rows, 1, 1), Threads, 0, y, rstd, x, weight, dim, eps, weightOffset, residual, yStride);
    }

    private const int NormRowsPerBlock = 8;

    /// <summary>
    /// The 16-byte vectors each lane holds when a warp takes a row (norm.cu's _rows kernels, NORM_VPL):
    /// up to 8 (dim &lt;= 2048), where a block per row leaves threads idle and too few loads in flight;
    /// null above, where a block of 256 threads has work for every thread.
    /// </summary>
    private static int? NormRowsPerWarp(int dim) => dim / 8 <= 32 * 8 ? Math.Max(1, (dim / 8 + 31) / 32) : null;

    /// <summary>
    /// dx[rows,dim] (= or +=, per <paramref name="accumulate"/>) the input gradient of RMSNorm with weight w + weightOffset;
    /// dx's rows are <paramref name="dxStride"/> elements apart (0: dense), its other columns left alone.
    /// </summary>
    public void RmsNormBackward(ulong dx, ulong dy, ulong x, ulong weight, ulong rstd, int rows, int dim, bool accumulate, float weightOffset = 0, int dxStride = 0)
    {
        RequireMultipleOf8(dim, nameof(dim));
        dxStride = dxStride == 0 ? dim : dxStride;
        if (dxStride < dim) throw new ArgumentOutOfRangeException(nameof(dxStride), "dx's row stride is shorter than its row.");
        RequireMultipleOf8(dxStride, nameof(dxStride));
        if (NormRowsPerWarp(dim) is { } vpl)
            Kernel("norm.cu", "rmsnorm_backward_rows", $"NORM_VPL={vpl}").Launch(((rows + NormRowsPerBlock - 1) / NormRowsPerBlock, 1, 1), 32 * NormRowsPerBlock, 0,
                dx, dy, x, weight, rstd, rows, dim, accumulate ? 1 : 0, weightOffset, dxStride);
        else
            Kernel("norm.cu", "rmsnorm_backward").Launch((rows, 1, 1), Threads, 0, dx, dy, x, weight, rstd, dim, accumulate ? 1 : 0, weightOffset, dxStride);
    }

    /// <summary>
    /// Rotates q [rows, qHeads, headDim] and k [rows, kHeads, headDim] in place, in one launch, by positions[rows]
    /// (int32) times invFreq[headDim/2] (fp32, already scaled, see <see cref="RopeFrequencies"/>): each angle's sine
    /// and cosine serve both. kHeads 0 rotates q alone. <paramref name="inverse"/> for the backward pass.
    /// </summary>
    public void Rope(ulong q, int qHeads, ulong k, int kHeads, ulong positions, ulong invFreq, int rows, int headDim, bool inverse)
    {
        if (headDim % 2 != 0) throw new ArgumentException($"RoPE needs an even head dimension (this is {headDim}).", nameof(headDim));
        var wide = headDim % 8 == 0;
        var groups = (long)rows * (headDim / 2 / (wide ? 4 : 1));
        Kernel("rope.cu", wide ? "rope_apply" : "rope_apply_scalar").Launch((GridFor(groups), 1, 1), Threads, 0,
            q, k, positions, invFreq, rows, qHeads, kHeads, headDim, inverse ? -1f : 1f);
    }

    /// <summary>
    /// <see cref="Rope"/>'s rotation of q and k (k with kHeads heads) written with an unrotated v (kHeads heads too) into
    /// one packed row <c>[q | k | v]</c> of <paramref name="ld"/> values in <paramref name="output"/>: the backward pass's
    /// q/k/v gradient as the input of one product. The values are <see cref="Rope"/>'s bit for bit.
    /// </summary>
    public void RopePacked(ulong output, int ld, ulong q, int qHeads, ulong k, ulong v, int kHeads, ulong positions, ulong invFreq, int rows, int headDim, bool inverse)
    {
        if (headDim % 2 != 0) throw new ArgumentException($"RoPE needs an even head dimension (this is {headDim}).", nameof(headDim));
        if (ld < (qHeads + 2 * kHeads) * headDim) throw new ArgumentOutOfRangeException(nameof(ld), "The packed row is shorter than q, k and v.");
        var wide = headDim % 8 == 0 && ld % 4 == 0;
        var groups = (long)rows * (headDim / 2 / (wide ? 4 : 1));
        Kernel("rope.cu", wide ? "rope_packed" : "rope_packed_scalar").Launch((GridFor(groups), 1, 1), Threads, 0,
            output, ld, q, k, v, positions, invFreq, rows, qHeads, kHeads, headDim, inverse ? -1f : 1f);
    }

    /// <summary>h = silu(gate) * up over <paramref name="count"/> elements.</summary>
    /// <remarks>
    /// With <paramref name="ld"/> (the GLU kernels): gate and up (and dgate, dup) are rows of <paramref name="width"/> values
    /// <paramref name="ld"/> apart, e.g. [gate | up] rows written by one product (ld = 2 · width); h and dh stay dense. 0: dense.
    /// </remarks>
    public void SwiGluForward(ulong h, ulong gate, ulong up, long count, int width = 0, int ld = 0) =>
        Glu("swiglu_forward", count, width, ld, h, gate, up);

    /// <summary>dgate, dup from dh; the outputs may alias gate and up. With <paramref name="h"/> (not 0) also h = silu(gate) * up, the forward pass's bits.</summary>
    public void SwiGluBackward(ulong dgate, ulong dup, ulong dh, ulong gate, ulong up, long count, int width = 0, int ld = 0, ulong h = 0) =>
        Glu("swiglu_backward", count, width, ld, dgate, dup, dh, gate, up, h);

    /// <summary>h = gelu_tanh(gate) * up over <paramref name="count"/> elements (GeGLU, Gemma).</summary>
    public void GeGluForward(ulong h, ulong gate, ulong up, long count, int width = 0, int ld = 0) =>
        Glu("geglu_forward", count, width, ld, h, gate, up);

    /// <summary>dgate, dup of GeGLU from dh; the outputs may alias gate and up.</summary>
    public void GeGluBackward(ulong dgate, ulong dup, ulong dh, ulong gate, ulong up, long count, int width = 0, int ld = 0, ulong h = 0) =>
        Glu("geglu_backward", count, width, ld, dgate, dup, dh, gate, up, h);

    private void Glu(string name, long count, int width, int ld, params ulong[] pointers)
    {
        if (ld == 0) width = 0;
        else
        {
            // A 16-byte access must not straddle two rows, and every row must start 16-byte aligned.
            RequireMultipleOf8(width, nameof(width));
            RequireMultipleOf8(ld, nameof(ld));
            if (ld < width || count % width != 0) throw new ArgumentOutOfRangeException(nameof(ld), "The GLU rows must be whole rows no wider than their stride.");
        }
        KernelArg[] args = [.. pointers.Select(p => (KernelArg)p), KernelArg.Int64(count), width, ld];
        Kernel("swiglu.cu", name).Launch((GridFor(count, 8), 1, 1), Threads, 0, args);
    }

    /// <summary>out = bf16(in) over <paramref name="count"/> fp32 values.</summary>
    public void Float32ToBFloat16(ulong output, ulong input, long count) =>
        Kernel("convert.cu", "f32_to_bf16").Launch((GridFor(count, 4), 1, 1), Threads, 0, output, input, KernelArg.Int64(count));

    /// <summary>out = fp32(in) over <paramref name="count"/> bf16 values.</summary>
    public void BFloat16ToFloat32(ulong output, ulong input, long count) =>
        Kernel("convert.cu", "bf16_to_f32").Launch((GridFor(count, 4), 1, 1), Threads, 0, output, input, KernelArg.Int64(count));

    /// <summary>out[rows, dim] = table[ids[rows]] · scale (ids int32, already validated against the vocabulary).</summary>
    public void EmbeddingForward(ulong output, ulong table, ulong ids, int rows, int dim, float scale = 1)
    {
        RequireMultipleOf8(dim, nameof(dim));
        if (scale == 1)
            Kernel("convert.cu", "embedding_forward").Launch((rows, 1, 1), Threads, 0, output, table, ids, dim);
        else
            Kernel("convert.cu", "embedding_forward_scaled").Launch((rows, 1, 1), Threads, 0, output, table, ids, dim, scale);
    }

    /// <summary>
    /// Fills <paramref name="count"/> bf16 (or fp32) values with uniform numbers in [-scale, scale): element i is a pure
    /// function of (i, seed); FineTune.Engine.Verification's UniformHash computes the same values on the CPU.
    /// </summary>
    public void FillUniform(ulong output, long count, ulong seed, float scale, bool float32 = false) =>
        Kernel("convert.cu", float32 ? "fill_uniform_f32" : "fill_uniform_bf16").Launch((GridFor(count), 1, 1), Threads, 0, output, KernelArg.Int64(count), seed, scale);

    /// <summary>One AdamW step (PyTorch's formula) on fp32 parameters, gradients and moments.</summary>
    public void AdamW(ulong parameters, ulong gradients, ulong m, ulong v, int count, int step, float lr, float beta1, float beta2,
        float eps, float weightDecay, float gradScale = 1f)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(step);
        var bc1 = (float)(1 - Math.Pow(beta1, step));
        var bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(beta2, step));
        Kernel("optimizer.cu", "adamw_step").Launch((GridFor(count), 1, 1), Threads, 0,
            parameters, gradients, m, v, count, lr, beta1, beta2, eps, weightDecay, bc1, bc2Sqrt, gradScale);
    }

    /// <summary>Blocks <see cref="SumSquares"/> uses for its first stage (size of its scratch, in floats).</summary>
    public int SumSquaresPartials => _device.MultiprocessorCount * 4;

    /// <summary>result[0] = sum of x^2 over <paramref name="count"/> fp32 values, in a fixed order; scratch holds <see cref="SumSquaresPartials"/> floats.</summary>
    public void SumSquares(ulong result, ulong x, int count, ulong scratch)
    {
        Kernel("optimizer.cu", "sum_squares_partial").Launch((SumSquaresPartials, 1, 1), Threads, 0, scratch, x, count);
        Kernel("optimizer.cu", "sum_partials").Launch((1, 1, 1), Threads, 0, result, scratch, SumSquaresPartials);
    }

    private static int AttentionSharedBytes(int headDim, int tiles, int extraFloats) => tiles * AttentionTile * (headDim + 8) * 2 + extraFloats * 4;

    /// <summary>The forward kernel's tiling; <see cref="AttentionForwardTiling.Auto"/> unless a benchmark pins one.</summary>
    public AttentionForwardTiling ForwardTiling { get; set; } = AttentionForwardTiling.Auto;

    /// <summary>
    /// Causal attention forward: out[B,T,Hq,D] and lse[B,Hq,T] (fp32) from q[B,T,Hq,D], k and v [B,T,Hkv,D];
    /// within <see cref="AttentionShape.Window"/> when it is set.
    /// </summary>
    public void AttentionForward(ulong output, ulong lse, ulong q, ulong k, ulong v, AttentionShape shape)
    {
        shape.Validate();
        var (file, suffix, threads, rows, shared) = ForwardKernels(shape.HeadDim);
        // Grid x over (batch, head), y over query tiles: blocks start in linear order, and the
        // kernel maps y = 0 to the last (longest) tile, so the long causal rows go first.
        Kernel(file, "attention_forward" + suffix, $"HEAD_DIM={shape.HeadDim}").Launch((shape.Batch * shape.QueryHeads * shape.Chunks, (shape.SeqLen + rows - 1) / rows, 1), threads,
            shared, output, lse, q, k, v, shape.SeqLen, shape.QueryHeads, shape.KvHeads, shape.Scale, shape.KernelWindow);
    }

    /// <summary>The forward kernel for <see cref="ForwardTiling"/>: its file, name suffix, block size, rows per block and shared memory.</summary>
    private (string File, string Suffix, int Threads, int Rows, int Shared) ForwardKernels(int headDim)
    {
        // 1 KiB of alignment, then the swizzled 64-row tiles: the query tiles and two (K, V) buffers.
        if (UsesHopperForward(headDim))
            return ("attention_hopper.cu", "_hopper" + HopperSuffix, HopperThreads, HopperWarpgroups * AttentionTile, 1024 + (HopperWarpgroups + 4) * SwizzledTileBytes(headDim));
        // 128 rows measured faster at head_dim 64 and 128 alike (bench/cuda-kernels/README.md).
        // Shared memory: the query tile plus two (K, V) buffers of 64 rows.
        var wide = ForwardTiling != AttentionForwardTiling.Rows64;
        return ("attention.cu", wide ? "_wide" : "", AttentionThreads, wide ? 2 * AttentionTile : AttentionTile, AttentionSharedBytes(headDim, wide ? 6 : 5, 0));
    }

    /// <summary>
    /// Warpgroups (64 rows each) per block of the Hopper kernels: 1 (64-row blocks, 128 threads, three
    /// per multiprocessor; separate blocks run out of step, so one's products overlap another's
    /// softmax: measured faster) unless a benchmark pins 2 (128-row blocks, 256 threads).
    /// </summary>
    public int HopperWarpgroups
    {
        get => _hopperWarpgroups;
        set => _hopperWarpgroups = value is 1 or 2 ? value : throw new ArgumentOutOfRangeException(nameof(value), "1 or 2 warpgroups.");
    }

    private int _hopperWarpgroups = 1;
    private string HopperSuffix => HopperWarpgroups == 2 ? "" : "_rows64";
    private int HopperThreads => 128 * HopperWarpgroups;
    /// <summary>A 64-row tile of the Hopper kernels' shared memory: 64-column swizzle atoms side by side.</summary>
    private static int SwizzledTileBytes(int headDim) => AttentionTile * headDim * 2;

    /// <summary>Whether the Hopper attention kernels (<see cref="AttentionForwardTiling.Hopper"/>, <see cref="AttentionBackwardTiling.Hopper"/>) exist for this device and head dimension.</summary>
    public bool HasHopperAttention(int headDim) => _device.Architecture == "sm_90" && headDim is 64 or 128;

    // Auto takes the Hopper kernels where they exist: measured faster than the mma.sync ones in both
    // passes (bench/cuda-kernels/README.md).
    private bool UsesHopperForward(int headDim) =>
        UsesHopper(ForwardTiling == AttentionForwardTiling.Auto, ForwardTiling == AttentionForwardTiling.Hopper, headDim, "forward");

    private bool UsesHopperBackward(int headDim) =>
        UsesHopper(BackwardTiling == AttentionBackwardTiling.Auto, BackwardTiling == AttentionBackwardTiling.Hopper, headDim, "backward");

    private bool UsesHopper(bool auto, bool pinned, int headDim, string pass)
    {
        if (auto)
            return HasHopperAttention(headDim);
        if (pinned && !HasHopperAttention(headDim))
            throw new ArgumentException($"The Hopper attention {pass} needs compute capability 9.0 and head dimension 64 or 128 (this is {_device.Architecture}, head dimension {headDim}).");
        return pinned;
    }

    /// <summary>The backward kernels <see cref="AttentionBackward"/> runs; <see cref="AttentionBackwardStages.All"/> unless a benchmark times one.</summary>
    public AttentionBackwardStages BackwardStages { get; set; } = AttentionBackwardStages.All;

    /// <summary>The backward kernels' tiling; <see cref="AttentionBackwardTiling.Auto"/> unless a benchmark pins one.</summary>
    public AttentionBackwardTiling BackwardTiling { get; set; } = AttentionBackwardTiling.Auto;

    /// <summary>
    /// Causal attention backward: dq, dk, dv (layouts as q, k, v) from the forward's inputs, its
    /// output and lse, and dout. <paramref name="delta"/> is scratch of B*Hq*T floats.
    /// </summary>
    public void AttentionBackward(ulong dq, ulong dk, ulong dv, ulong q, ulong k, ulong v, ulong output, ulong dout, ulong lse, ulong delta, AttentionShape shape)
    {
        shape.Validate();
        var define = $"HEAD_DIM={shape.HeadDim}";
        // delta: HeadDim/8 threads per (b, t, h) row, 16 bytes each.
        var deltaThreads = (long)shape.Batch * shape.SeqLen * shape.QueryHeads * (shape.HeadDim / 8);
        if (BackwardStages.HasFlag(AttentionBackwardStages.Delta))
            Kernel("attention.cu", "attention_backward_delta", define).Launch(((int)((deltaThreads + Threads - 1) / Threads), 1, 1), Threads, 0,
                delta, dout, output, shape.Batch, shape.SeqLen, shape.QueryHeads);
        // dK/dV blocks: grid (B * Hkv, key tiles), key tile 0 (the most query tiles after it)
        // first. dQ blocks: grid (B * Hq, query tiles), the last (longest) tile first.
        var kvX = shape.Batch * shape.KvHeads * shape.Chunks;
        var qX = shape.Batch * shape.QueryHeads * shape.Chunks;
        var (file, suffix, threads, rows, kvShared, qShared) = BackwardKernels(shape.HeadDim);
        var rowTiles = (shape.SeqLen + rows - 1) / rows;
        if (BackwardStages.HasFlag(AttentionBackwardStages.KeyValue | AttentionBackwardStages.Query))
        {
            // Both in one launch (the dK/dV blocks first, then the dQ blocks), so the short dQ
            // blocks fill the tail of the long dK/dV ones.
            Kernel(file, "attention_backward_fused" + suffix, define).Launch((kvX * rowTiles + qX * rowTiles, 1, 1), threads,
                Math.Max(kvShared, qShared), dq, dk, dv, q, k, v, dout, lse, delta, shape.SeqLen, shape.QueryHeads, shape.KvHeads, shape.Scale, shape.KernelWindow, kvX, rowTiles, qX);
            return;
        }
        if (BackwardStages.HasFlag(AttentionBackwardStages.KeyValue))
            Kernel(file, "attention_backward_dkv" + suffix, define).Launch((kvX, rowTiles, 1), threads,
                kvShared, dk, dv, q, k, v, dout, lse, delta, shape.SeqLen, shape.QueryHeads, shape.KvHeads, shape.Scale, shape.KernelWindow);
        if (BackwardStages.HasFlag(AttentionBackwardStages.Query))
            Kernel(file, "attention_backward_dq" + suffix, define).Launch((qX, rowTiles, 1), threads,
                qShared, dq, q, k, v, dout, lse, delta, shape.SeqLen, shape.QueryHeads, shape.KvHeads, shape.Scale, shape.KernelWindow);
    }

    /// <summary>
    /// The <c>mma.sync</c> backward tiling <see cref="AttentionBackwardTiling.Auto"/> takes where the Hopper kernels do not
    /// run: 128 rows up to head_dim 64 (measured faster there), 64 above (128-row blocks do not fit).
    /// </summary>
    public static AttentionBackwardTiling MmaSyncBackwardTiling(int headDim) =>
        headDim <= 64 ? AttentionBackwardTiling.Rows128 : AttentionBackwardTiling.Rows64;

    /// <summary>The backward kernels for <see cref="BackwardTiling"/>: their file, name suffix, block size, rows per block and shared memory of each kind.</summary>
    private (string File, string Suffix, int Threads, int Rows, int KvShared, int QShared) BackwardKernels(int headDim)
    {
        if (UsesHopperBackward(headDim))
        {
            // 1 KiB of alignment, the resident tiles (Q and dO, or K and V), two buffers of the
            // streamed pair, and two lse/delta rows (dK/dV); both kinds get the larger size.
            var shared = 1024 + (2 * HopperWarpgroups + 4) * SwizzledTileBytes(headDim) + 4 * AttentionTile * 4;
            return ("attention_hopper.cu", "_hopper" + HopperSuffix, HopperThreads, HopperWarpgroups * AttentionTile, shared, shared);
        }
        var wide = BackwardTiling switch
        {
            AttentionBackwardTiling.Rows128 when headDim > 64 => throw new ArgumentException("128-row backward tiles need head_dim <= 64."),
            AttentionBackwardTiling.Rows128 => true,
            AttentionBackwardTiling.Rows64 => false,
            _ => MmaSyncBackwardTiling(headDim) == AttentionBackwardTiling.Rows128,
        };
        // dK/dV: two (Q, dO) buffers of 64 rows, the K and V tiles (64-row blocks keep them only
        // above head_dim 64, where they are not held in registers), and two lse/delta rows. dQ: two
        // (K, V) buffers of 64 rows, and Q and dO of the block's rows (the 64-row kernel stages those
        // through a K/V buffer into registers). Above head_dim 128 the dQ blocks also keep Q and dO
        // resident (2 more tiles), and each block of either kind owns one 128-column chunk of its outputs.
        var kvShared = AttentionSharedBytes(headDim, wide ? 8 : headDim <= 64 ? 4 : 6, 4 * AttentionTile);
        var qShared = AttentionSharedBytes(headDim, wide ? 8 : headDim <= 128 ? 4 : 6, 0);
        return ("attention.cu", wide ? "_wide" : "", AttentionThreads, wide ? 2 * AttentionTile : AttentionTile, kvShared, qShared);
    }

    /// <summary>The widest vocabulary chunk ce_chunk takes (256 threads x 32 logits in registers).</summary>
    internal const int MaxCrossEntropyChunk = 8192;

    internal void CrossEntropyChunk(ulong e, ulong dhAcc, ulong runMax, ulong runSum, ulong targetLogit, ulong logits, ulong targets,
        int rows, int chunk, int v0, int hidden, bool first) =>
        Kernel("cross_entropy.cu", "ce_chunk").Launch((rows, 1, 1), Threads, 0, e, dhAcc, runMax, runSum, targetLogit, logits, targets, chunk, v0, hidden, first ? 1 : 0);

    internal void CrossEntropyFinalize(ulong dh, ulong loss, ulong dhAcc, ulong weight, ulong targets, ulong runMax, ulong runSum, ulong targetLogit,
        int rows, int hidden, float gradScale) =>
        Kernel("cross_entropy.cu", "ce_finalize").Launch((rows, 1, 1), Threads, 0, dh, loss, dhAcc, weight, targets, runMax, runSum, targetLogit, hidden, gradScale);

    internal void CrossEntropyRowSum(ulong sums, ulong logits, int rows, int chunk, bool first) =>
        Kernel("cross_entropy.cu", "ce_row_sum").Launch((rows, 1, 1), Threads, 0, sums, logits, chunk, first ? 1 : 0);

    internal void CrossEntropyFinalizeRows(ulong dh, ulong dhAcc, ulong weight, ulong targets, ulong runSum, ulong rowScale, int rows, int hidden) =>
        Kernel("cross_entropy.cu", "ce_finalize_rows").Launch((rows, 1, 1), Threads, 0, dh, dhAcc, weight, targets, runSum, rowScale, hidden);

    private static void RequireMultipleOf8(int value, string name)
    {
        if (value <= 0 || value % 8 != 0)
            throw new ArgumentException($"{name} = {value} must be a positive multiple of 8 (16-byte vector accesses).", name);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var module in _modules.Values)
            module.Dispose();
        _modules.Clear();
    }
}
