using System.Runtime.InteropServices;
using FineTune.Engine.Backends.Cuda.Blas;
using FineTune.Engine.Backends.Cuda.Compilation;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// Checks every CUDA kernel against <see cref="CpuReference"/> on fresh random inputs: outputs are
/// poisoned (all bits set: NaN in bf16 and fp32) before each run so an unwritten element fails,
/// the relative error must be within bf16 tolerance, and a second run must give the same bytes.
/// Shared by the GPU tests and the bench program so both run the same checks.
/// </summary>
public sealed partial class KernelChecks : IDisposable
{
    private readonly List<DeviceBuffer> _buffers = [];

    private KernelChecks(CudaDevice device)
    {
        Device = device;
        device.SynchronizeAfterLaunch = true;
        Compiler = new KernelCompiler(device);
        Blas = new CudaBlas(device);
        Kernels = new CudaKernels(device, Compiler, Blas);
    }

    /// <summary>Opens GPU 0 and binds NVRTC and cuBLASLt (FT31xx when something is missing).</summary>
    public static KernelChecks Open() => new(CudaDevice.Open());

    /// <summary>The GPU.</summary>
    public CudaDevice Device { get; }

    /// <summary>The kernel compiler.</summary>
    public KernelCompiler Compiler { get; }

    /// <summary>cuBLASLt.</summary>
    public CudaBlas Blas { get; }

    /// <summary>The kernels under test.</summary>
    public CudaKernels Kernels { get; }

    /// <summary>Every check, by name.</summary>
    public IReadOnlyDictionary<string, Func<int, KernelCheckResult>> All => new Dictionary<string, Func<int, KernelCheckResult>>
    {
        ["gemm_linear_forward_bf16"] = seed => Gemm("gemm_linear_forward_bf16", seed, transA: false, transB: true, f32: false, beta: 0),
        ["gemm_input_grad_bf16"] = seed => Gemm("gemm_input_grad_bf16", seed, transA: false, transB: false, f32: false, beta: 0),
        ["gemm_weight_grad_f32"] = seed => Gemm("gemm_weight_grad_f32", seed, transA: true, transB: false, f32: true, beta: 0),
        ["gemm_accumulate_f32"] = seed => Gemm("gemm_accumulate_f32", seed, transA: false, transB: true, f32: true, beta: 1),
        // The LoRA group products' views (CudaTrainingModel.Linear): one projection's r columns of a
        // group's [n, 3r] hidden or g buffer as the first operand (plain and transposed), as the
        // second, and as the output, which must leave the other columns alone.
        // hidden · Bᵀ added into y (the LoRA up-projection reading its columns of the hidden buffer)
        ["gemm_strided_first_operand"] = seed => GemmStrided("gemm_strided_first_operand", seed, 264, 328, 16, transA: false, transB: true, f32: false, beta: 1, view: 'A'),
        // dB += dyᵀ · hidden (fp32 gradient)
        ["gemm_strided_second_operand"] = seed => GemmStrided("gemm_strided_second_operand", seed, 328, 16, 264, transA: true, transB: false, f32: true, beta: 1, view: 'B'),
        // dA += gᵀ · x with g in the residual gradient's spare columns (o/down's stacked input gradient)
        ["gemm_strided_first_transposed"] = seed => GemmStrided("gemm_strided_first_transposed", seed, 16, 328, 264, transA: true, transB: false, f32: true, beta: 1, view: 'A'),
        // hidden = x · Aᵀ and g = dy · B into their columns
        ["gemm_strided_output"] = seed => GemmStrided("gemm_strided_output", seed, 264, 16, 136, transA: false, transB: true, f32: false, beta: 0, view: 'C'),
        ["gemm_strided_output_g"] = seed => GemmStrided("gemm_strided_output_g", seed, 264, 16, 136, transA: false, transB: false, f32: false, beta: 0, view: 'C'),
        ["rmsnorm_forward"] = RmsNormForward,
        // A projection input with spare columns for the LoRA hidden values (the fused gate/up product [x | h]·[W | B]ᵀ).
        ["rmsnorm_forward_strided"] = seed => RmsNormForward(seed, yStride: 2048 + 32),
        ["rmsnorm_backward"] = RmsNormBackward,
        // The residual gradient with spare columns for LoRA g (CudaTrainingModel's fused input gradients).
        ["rmsnorm_backward_strided"] = seed => RmsNormBackward(seed, dxStride: 2048 + 16),
        // A warp per row with lanes of unequal share (SmolLM2's 576: 72 vectors over 32 lanes) and a last block
        // of fewer than 8 rows, and a block per row above 2048 (Llama-3.1-8B's 4096).
        ["rmsnorm_forward_smollm2"] = seed => RmsNormForward(seed, yStride: 576 + 32, rows: 37, dim: 576, name: "rmsnorm_forward_smollm2"),
        ["rmsnorm_backward_smollm2"] = seed => RmsNormBackward(seed, dxStride: 576 + 16, rows: 37, dim: 576, name: "rmsnorm_backward_smollm2"),
        ["rmsnorm_forward_block_per_row"] = seed => RmsNormForward(seed, yStride: 0, rows: 24, dim: 4096, name: "rmsnorm_forward_block_per_row"),
        ["rmsnorm_backward_block_per_row"] = seed => RmsNormBackward(seed, dxStride: 0, rows: 24, dim: 4096, name: "rmsnorm_backward_block_per_row"),
        ["rmsnorm_forward_gemma"] = RmsNormForwardGemma,
        ["rmsnorm_backward_gemma"] = RmsNormBackwardGemma,
        ["rope_llama3"] = Rope,
        // q and k in one launch, as training runs them (SmolLM2's 9 and 3 heads), and the scalar path of a head_dim that is not a multiple of 8.
        ["rope_q_and_k"] = seed => RopeQK("rope_q_and_k", seed, rows: 37, qHeads: 9, kHeads: 3, headDim: 64),
        ["rope_q_and_k_scalar"] = seed => RopeQK("rope_q_and_k_scalar", seed, rows: 23, qHeads: 4, kHeads: 2, headDim: 12),
        // The backward pass's packed [q | k | v] gradient rows (CudaTrainingModel's q/k/v input gradient as one product).
        ["rope_packed"] = seed => RopePacked("rope_packed", seed, rows: 37, qHeads: 9, kHeads: 3, headDim: 64, pad: 8),
        ["rope_packed_scalar"] = seed => RopePacked("rope_packed_scalar", seed, rows: 23, qHeads: 4, kHeads: 2, headDim: 12, pad: 3),
        ["swiglu_forward"] = SwiGluForward,
        ["swiglu_backward"] = SwiGluBackward,
        ["geglu_forward"] = GeGluForward,
        ["geglu_backward"] = GeGluBackward,
        // One product's [gate | up] rows (CudaTrainingModel's fused gate/up product): the GLU kernels with a row stride, the backward pass in place.
        ["swiglu_gate_up_rows"] = seed => GluRows("swiglu_gate_up_rows", seed, gelu: false),
        ["geglu_gate_up_rows"] = seed => GluRows("geglu_gate_up_rows", seed, gelu: true),
        ["attention_hd64"] = seed => Attention("attention_hd64", seed, new AttentionShape(2, 200, 8, 2, 64), AttentionForwardTiling.Auto),
        ["attention_hd64_rows64"] = seed => Attention("attention_hd64_rows64", seed, new AttentionShape(2, 200, 8, 2, 64), AttentionForwardTiling.Rows64, AttentionBackwardTiling.Rows64),
        ["attention_hd128"] = seed => Attention("attention_hd128", seed, new AttentionShape(1, 130, 4, 1, 128), AttentionForwardTiling.Auto),
        ["attention_hd128_rows128"] = seed => Attention("attention_hd128_rows128", seed, new AttentionShape(1, 130, 4, 1, 128), AttentionForwardTiling.Rows128),
        // The heads of the models the benchmark times, at sequence lengths that are not multiples of any tile.
        ["attention_llama1b_heads"] = seed => Attention("attention_llama1b_heads", seed, new AttentionShape(1, 257, 32, 8, 64), AttentionForwardTiling.Auto),
        ["attention_llama8b_heads"] = seed => Attention("attention_llama8b_heads", seed, new AttentionShape(1, 193, 32, 8, 128), AttentionForwardTiling.Auto),
        ["attention_smollm2_heads"] = seed => Attention("attention_smollm2_heads", seed, new AttentionShape(2, 301, 9, 3, 64), AttentionForwardTiling.Auto),
        ["attention_smollm2_heads_rows64"] = seed => Attention("attention_smollm2_heads_rows64", seed, new AttentionShape(2, 301, 9, 3, 64), AttentionForwardTiling.Rows64, AttentionBackwardTiling.Rows64),
        ["attention_hd64_separate_launches"] = seed => Attention("attention_hd64_separate_launches", seed, new AttentionShape(2, 200, 8, 2, 64), AttentionForwardTiling.Auto, AttentionBackwardTiling.Auto, separateLaunches: true),
        ["attention_hd64_rows64_separate_launches"] = seed => Attention("attention_hd64_rows64_separate_launches", seed, new AttentionShape(2, 200, 8, 2, 64), AttentionForwardTiling.Auto, AttentionBackwardTiling.Rows64, separateLaunches: true),
        ["attention_hd128_separate_launches"] = seed => Attention("attention_hd128_separate_launches", seed, new AttentionShape(1, 130, 4, 1, 128), AttentionForwardTiling.Auto, AttentionBackwardTiling.Auto, separateLaunches: true),
        ["attention_short_sequences"] = seed => Attention("attention_short_sequences", seed, new AttentionShape(3, 37, 4, 2, 64), AttentionForwardTiling.Auto),
        // Gemma 3: head_dim 256 (two 128-column output chunks per head), query_pre_attn_scalar's
        // scale, and sliding windows shorter than a tile, between tiles and longer than the sequence.
        ["attention_hd256"] = seed => Attention("attention_hd256", seed, new AttentionShape(1, 130, 4, 1, 256) { SoftmaxScale = 0.0625f }, AttentionForwardTiling.Auto),
        ["attention_hd256_rows64"] = seed => Attention("attention_hd256_rows64", seed, new AttentionShape(2, 97, 2, 2, 256), AttentionForwardTiling.Rows64),
        ["attention_hd256_separate_launches"] = seed => Attention("attention_hd256_separate_launches", seed, new AttentionShape(1, 130, 4, 1, 256), AttentionForwardTiling.Auto, separateLaunches: true),
        ["attention_gemma3_1b_local"] = seed => Attention("attention_gemma3_1b_local", seed, new AttentionShape(1, 301, 4, 1, 256) { Window = 100, SoftmaxScale = 0.0625f }, AttentionForwardTiling.Auto),
        ["attention_gemma3_1b_local_rows64"] = seed => Attention("attention_gemma3_1b_local_rows64", seed, new AttentionShape(1, 301, 4, 1, 256) { Window = 100, SoftmaxScale = 0.0625f }, AttentionForwardTiling.Rows64, separateLaunches: true),
        ["attention_hd256_window_longer_than_sequence"] = seed => Attention("attention_hd256_window_longer_than_sequence", seed, new AttentionShape(2, 77, 2, 1, 256) { Window = 512 }, AttentionForwardTiling.Auto),
        ["attention_hd64_window"] = seed => Attention("attention_hd64_window", seed, new AttentionShape(2, 300, 8, 2, 64) { Window = 70 }, AttentionForwardTiling.Auto),
        ["attention_hd64_window_rows64"] = seed => Attention("attention_hd64_window_rows64", seed, new AttentionShape(2, 300, 8, 2, 64) { Window = 70 }, AttentionForwardTiling.Rows64, AttentionBackwardTiling.Rows64),
        ["attention_hd64_window_separate_launches"] = seed => Attention("attention_hd64_window_separate_launches", seed, new AttentionShape(1, 300, 4, 2, 64) { Window = 33 }, AttentionForwardTiling.Auto, separateLaunches: true),
        ["attention_hd128_window"] = seed => Attention("attention_hd128_window", seed, new AttentionShape(1, 259, 8, 4, 128) { Window = 20, SoftmaxScale = 0.1f }, AttentionForwardTiling.Auto),
        ["attention_hd128_window_rows128"] = seed => Attention("attention_hd128_window_rows128", seed, new AttentionShape(1, 259, 8, 4, 128) { Window = 129 }, AttentionForwardTiling.Rows128),
        // One launch over a variable-length batch (a realistic SFT batch's lengths, multiples of 16).
        ["attention_varlen_hd64"] = seed => AttentionVarlen("attention_varlen_hd64", seed, [208, 16, 16, 64, 400, 48, 128, 16], 8, 2, 64),
        ["attention_varlen_hd64_rows64"] = seed => AttentionVarlen("attention_varlen_hd64_rows64", seed, [144, 32, 16, 272], 8, 2, 64, rows64: true),
        ["attention_varlen_hd128"] = seed => AttentionVarlen("attention_varlen_hd128", seed, [96, 16, 272, 32, 32, 160], 8, 2, 128),
        ["attention_varlen_hd256_window"] = seed => AttentionVarlen("attention_varlen_hd256_window", seed, [48, 320, 16, 144], 4, 1, 256, window: 100, scale: 0.0625f),
        // The Hopper (wgmma) kernels, compute capability 9.0 only (IsHopperCheck), at the shapes of the
        // checks above; the backward pass consumes the Hopper forward's output, as in training.
        ["attention_hd64_hopper"] = seed => Attention("attention_hd64_hopper", seed, new AttentionShape(2, 200, 8, 2, 64), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_llama1b_heads_hopper"] = seed => Attention("attention_llama1b_heads_hopper", seed, new AttentionShape(1, 257, 32, 8, 64), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_smollm2_heads_hopper"] = seed => Attention("attention_smollm2_heads_hopper", seed, new AttentionShape(2, 301, 9, 3, 64), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_short_sequences_hopper"] = seed => Attention("attention_short_sequences_hopper", seed, new AttentionShape(3, 37, 4, 2, 64), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_hd64_window_hopper"] = seed => Attention("attention_hd64_window_hopper", seed, new AttentionShape(2, 300, 8, 2, 64) { Window = 70 }, AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_hd64_hopper_separate_launches"] = seed => Attention("attention_hd64_hopper_separate_launches", seed, new AttentionShape(2, 200, 8, 2, 64), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper, separateLaunches: true),
        ["attention_varlen_hd64_hopper"] = seed => AttentionVarlen("attention_varlen_hd64_hopper", seed, [208, 16, 16, 64, 400, 48, 128, 16], 8, 2, 64, hopper: true),
        // Head_dim 128 (Llama-3.1-8B, Qwen3, Mistral): two 64-column swizzle atoms a tile row, two products per output row block.
        ["attention_hd128_hopper"] = seed => Attention("attention_hd128_hopper", seed, new AttentionShape(1, 130, 4, 1, 128), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_llama8b_heads_hopper"] = seed => Attention("attention_llama8b_heads_hopper", seed, new AttentionShape(1, 257, 32, 8, 128), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_hd128_short_sequences_hopper"] = seed => Attention("attention_hd128_short_sequences_hopper", seed, new AttentionShape(3, 37, 4, 2, 128), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_hd128_window_hopper"] = seed => Attention("attention_hd128_window_hopper", seed, new AttentionShape(1, 259, 8, 4, 128) { Window = 20, SoftmaxScale = 0.1f }, AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper),
        ["attention_hd128_hopper_separate_launches"] = seed => Attention("attention_hd128_hopper_separate_launches", seed, new AttentionShape(2, 200, 8, 2, 128), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper, separateLaunches: true),
        ["attention_varlen_hd128_hopper"] = seed => AttentionVarlen("attention_varlen_hd128_hopper", seed, [96, 16, 272, 32, 32, 160], 8, 2, 128, hopper: true),
        // Two warpgroups per block (128 rows): the same kernels with the 128-row grids and tables.
        ["attention_smollm2_heads_hopper_rows128"] = seed => TwoWarpgroups(() => Attention("attention_smollm2_heads_hopper_rows128", seed, new AttentionShape(2, 301, 9, 3, 64), AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper)),
        ["attention_hd64_window_hopper_rows128"] = seed => TwoWarpgroups(() => Attention("attention_hd64_window_hopper_rows128", seed, new AttentionShape(2, 300, 8, 2, 64) { Window = 70 }, AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper, separateLaunches: true)),
        ["attention_varlen_hd64_hopper_rows128"] = seed => TwoWarpgroups(() => AttentionVarlen("attention_varlen_hd64_hopper_rows128", seed, [144, 32, 16, 272], 8, 2, 64, hopper: true)),
        ["attention_hd128_window_hopper_rows128"] = seed => TwoWarpgroups(() => Attention("attention_hd128_window_hopper_rows128", seed, new AttentionShape(2, 300, 8, 2, 128) { Window = 70 }, AttentionForwardTiling.Hopper, AttentionBackwardTiling.Hopper)),
        ["lm_head_cross_entropy"] = CrossEntropy,
        ["adamw"] = AdamW,
        ["sum_squares"] = SumSquares,
        ["convert_bf16_f32"] = Convert,
        ["embedding"] = Embedding,
        ["embedding_scaled"] = EmbeddingScaled,
        ["fill_uniform"] = FillUniform,
        ["memory_pool"] = MemoryPool,
        ["kernel_cache"] = KernelCache,
    };

    /// <summary>Whether check <paramref name="name"/> is of a kernel that exists only on compute capability 9.0 (attention_hopper.cu): its name says "_hopper".</summary>
    public static bool IsHopperCheck(string name) => name.Contains("_hopper", StringComparison.Ordinal);

    private KernelCheckResult TwoWarpgroups(Func<KernelCheckResult> check)
    {
        Kernels.HopperWarpgroups = 2;
        try
        {
            return check();
        }
        finally
        {
            Kernels.HopperWarpgroups = 1;
        }
    }

    /// <summary>
    /// Auto as it resolves on a GPU without the Hopper kernels (the mma.sync tilings), so the checks
    /// that name no Hopper tiling keep checking the kernels other GPUs run, on an H100/H200 too;
    /// the checks <see cref="IsHopperCheck"/> names pin the Hopper ones.
    /// </summary>
    private static (AttentionForwardTiling, AttentionBackwardTiling) WithoutHopper(AttentionForwardTiling forward, AttentionBackwardTiling backward, int headDim) =>
        (forward == AttentionForwardTiling.Auto ? AttentionForwardTiling.Rows128 : forward,
         backward == AttentionBackwardTiling.Auto ? CudaKernels.MmaSyncBackwardTiling(headDim) : backward);

    /// <summary>Whether check <paramref name="name"/> has a kernel to check on this device.</summary>
    public bool Applies(string name) => !IsHopperCheck(name) || Kernels.HasHopperAttention(64);

    /// <summary>Runs one check with a fresh seed (or the given one, to reproduce a failure).</summary>
    public KernelCheckResult Run(string name, int? seed = null)
    {
        var s = seed ?? Random.Shared.Next();
        // Test runners move between threads; the context is per thread.
        Device.MakeCurrent();
        try
        {
            return All[name](s);
        }
        catch (Exception e) when (e is CudaException or ArgumentException or FineTune.Core.Diagnostics.FineTuneException)
        {
            return new KernelCheckResult(name, s, [], false, e.Message);
        }
        finally
        {
            foreach (var buffer in _buffers)
                buffer.Dispose();
            _buffers.Clear();
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    private DeviceBuffer Upload<T>(T[] data) where T : unmanaged
    {
        var buffer = Alloc((long)data.Length * Marshal.SizeOf<T>());
        buffer.Upload<T>(data);
        return buffer;
    }

    private DeviceBuffer Alloc(long bytes)
    {
        var buffer = Device.Memory.Allocate(bytes);
        _buffers.Add(buffer);
        return buffer;
    }

    /// <summary>Runs <paramref name="prepare"/> and <paramref name="launch"/> twice and returns both runs' output bytes.</summary>
    private (byte[][] First, bool Deterministic) Twice(Action prepare, Action launch, params DeviceBuffer[] outputs)
    {
        byte[][] Once()
        {
            foreach (var o in outputs)
                o.FillBytes(0xFF);
            prepare();
            launch();
            Device.Synchronize();
            return outputs.Select(o => o.Download<byte>()).ToArray();
        }
        var first = Once();
        var second = Once();
        return (first, first.Zip(second).All(p => p.First.AsSpan().SequenceEqual(p.Second)));
    }

    private static ushort[] AsBf16(byte[] bytes) => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray();
    private static float[] AsF32(byte[] bytes) => MemoryMarshal.Cast<byte, float>(bytes).ToArray();

    private const double Bf16Tolerance = 1e-2;
    internal const double Bf16GradTolerance = 2e-2;
    private const double F32Tolerance = 1e-5;

    // ---- checks ----------------------------------------------------------------------------

    private KernelCheckResult Gemm(string name, int seed, bool transA, bool transB, bool f32, float beta)
    {
        var rng = new Random(seed);
        const int m = 200, n = 328, k = 264;
        var a = Bf16.Random(rng, (long)m * k);
        var b = Bf16.Random(rng, (long)k * n);
        var c0 = Enumerable.Range(0, m * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var da = Upload(a);
        var db = Upload(b);
        var dc = Alloc((long)m * n * (f32 ? 4 : 2));
        var (outs, det) = Twice(() => { if (beta != 0) dc.Upload<float>(c0); },
            () => Blas.Gemm(da.Pointer, transA, db.Pointer, transB, dc.Pointer, m, n, k, f32, 1f, beta), dc);
        var reference = CpuReference.Gemm(Bf16.ToDouble(a), transA, Bf16.ToDouble(b), transB, m, n, k,
            beta != 0 ? Array.ConvertAll(c0, x => (double)x) : null, beta);
        var err = f32 ? ErrorMetrics.Relative(AsF32(outs[0]), reference) : ErrorMetrics.Relative(AsBf16(outs[0]), reference);
        return new KernelCheckResult(name, seed, [new OutputError("C", err, f32 ? 1e-5 : Bf16Tolerance)], det);
    }

    /// <summary>
    /// <see cref="Gemm"/> with the chosen operands stored as column blocks of wider row-major matrices
    /// (16 columns at offset 16 of 48, as r = 16 in a q/k/v group). The reference is the same product of
    /// the dense blocks; an output view's neighbouring columns must keep their bytes.
    /// </summary>
    private KernelCheckResult GemmStrided(string name, int seed, int m, int n, int k, bool transA, bool transB, bool f32, float beta, char view)
    {
        const int groupWidth = 48, offset = 16;
        var rng = new Random(seed);
        var (aRows, aCols) = transA ? (k, m) : (m, k);
        var (bRows, bCols) = transB ? (n, k) : (k, n);
        var a = Bf16.Random(rng, (long)aRows * aCols);
        var b = Bf16.Random(rng, (long)bRows * bCols);
        // The addend as the output's type holds it (bf16 outputs accumulate into bf16, as y += hidden · Bᵀ does).
        var c0 = Enumerable.Range(0, m * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).Select(x => f32 ? x : Bf16.ToSingle(Bf16.FromSingle(x))).ToArray();
        var elem = f32 ? 4 : 2;
        var da = Upload(view == 'A' ? Widen(a, aRows, aCols, groupWidth, offset, rng) : a);
        var db = Upload(view == 'B' ? Widen(b, bRows, bCols, groupWidth, offset, rng) : b);
        var cWidth = view == 'C' ? groupWidth : n;
        var dc = Alloc((long)m * cWidth * elem);
        ulong At(DeviceBuffer buffer, char which, int size) => buffer.Pointer + (ulong)(view == which ? offset * size : 0);
        int Ld(char which) => view == which ? groupWidth : 0;
        var (outs, det) = Twice(() => { if (beta != 0) { if (f32) dc.Upload<float>(c0); else dc.Upload<ushort>(Array.ConvertAll(c0, Bf16.FromSingle)); } },
            () => Blas.Gemm(At(da, 'A', 2), transA, At(db, 'B', 2), transB, At(dc, 'C', elem), m, n, k, f32, 1f, beta, lda: Ld('A'), ldb: Ld('B'), ldc: Ld('C')), dc);
        var reference = CpuReference.Gemm(Bf16.ToDouble(a), transA, Bf16.ToDouble(b), transB, m, n, k,
            beta != 0 ? Array.ConvertAll(c0, x => (double)x) : null, beta);
        var bytes = outs[0];
        var dense = new byte[(long)m * n * elem];
        var untouched = true;
        var start = view == 'C' ? offset * elem : 0;
        for (var r = 0; r < m; r++)
        {
            var row = bytes.AsSpan(r * cWidth * elem, cWidth * elem);
            row.Slice(start, n * elem).CopyTo(dense.AsSpan(r * n * elem));
            if (view == 'C' && (row[..start].IndexOfAnyExcept((byte)0xFF) >= 0 || row[(start + n * elem)..].IndexOfAnyExcept((byte)0xFF) >= 0)) untouched = false;
        }
        var err = f32 ? ErrorMetrics.Relative(AsF32(dense), reference) : ErrorMetrics.Relative(AsBf16(dense), reference);
        return new KernelCheckResult(name, seed, [new OutputError("C", err, f32 ? F32Tolerance : Bf16Tolerance)], det,
            untouched ? null : "the output view wrote outside its columns");
    }

    /// <summary>A dense [rows, cols] matrix placed at column <paramref name="offset"/> of a [rows, width] one whose other columns are random.</summary>
    private static ushort[] Widen(ushort[] dense, int rows, int cols, int width, int offset, Random rng)
    {
        var wide = Bf16.Random(rng, (long)rows * width);
        for (var r = 0; r < rows; r++)
            dense.AsSpan(r * cols, cols).CopyTo(wide.AsSpan(r * width + offset));
        return wide;
    }

    private KernelCheckResult RmsNormForward(int seed) => RmsNormForward(seed, yStride: 0);

    /// <summary>With <paramref name="yStride"/> &gt; dim, y is the first dim columns of wider rows whose other columns must stay unwritten.</summary>
    private KernelCheckResult RmsNormForward(int seed, int yStride, int rows = 64, int dim = 2048, string? name = null)
    {
        var rng = new Random(seed);
        const float eps = 1e-5f;
        var stride = yStride == 0 ? dim : yStride;
        var x = Bf16.Random(rng, rows * dim, 2f);
        var w = Bf16.Random(rng, dim);
        var dx = Upload(x);
        var dw = Upload(w);
        var y = Alloc(rows * stride * 2L);
        var rstd = Alloc(rows * 4L);
        var (outs, det) = Twice(() => { }, () => Kernels.RmsNormForward(y.Pointer, rstd.Pointer, dx.Pointer, dw.Pointer, rows, dim, eps, yStride: yStride), y, rstd);
        var (ry, rr) = CpuReference.RmsNorm(Bf16.ToDouble(x), Bf16.ToDouble(w), rows, dim, eps);
        var all = AsBf16(outs[0]);
        var got = new ushort[rows * dim];
        var untouched = true;
        for (var r = 0; r < rows; r++)
        {
            all.AsSpan(r * stride, dim).CopyTo(got.AsSpan(r * dim));
            if (all.AsSpan(r * stride + dim, stride - dim).IndexOfAnyExcept((ushort)0xFFFF) >= 0) untouched = false;
        }
        return new KernelCheckResult(name ?? (yStride == 0 ? "rmsnorm_forward" : "rmsnorm_forward_strided"), seed,
            [new("y", ErrorMetrics.Relative(got, ry), Bf16Tolerance), new("rstd", ErrorMetrics.Relative(AsF32(outs[1]), rr), 1e-5)], det,
            untouched ? null : "y's spare columns were written");
    }

    private KernelCheckResult RmsNormBackward(int seed) => RmsNormBackward(seed, dxStride: 0);

    /// <summary>With <paramref name="dxStride"/> &gt; dim, dx is the first dim columns of wider rows whose other columns must keep their bytes.</summary>
    private KernelCheckResult RmsNormBackward(int seed, int dxStride, int rows = 64, int dim = 2048, string? name = null)
    {
        var rng = new Random(seed);
        const float eps = 1e-5f;
        var stride = dxStride == 0 ? dim : dxStride;
        var x = Bf16.Random(rng, rows * dim, 2f);
        var w = Bf16.Random(rng, dim);
        var dy = Bf16.Random(rng, rows * dim);
        var residual = Bf16.Random(rng, rows * stride);
        var (_, rstdRef) = CpuReference.RmsNorm(Bf16.ToDouble(x), Bf16.ToDouble(w), rows, dim, eps);
        var rstd = Upload(Array.ConvertAll(rstdRef, r => (float)r));
        var dx = Upload(x);
        var dw = Upload(w);
        var ddy = Upload(dy);
        var grad = Alloc(rows * stride * 2L);
        var (outs, det) = Twice(() => grad.Upload<ushort>(residual),
            () => Kernels.RmsNormBackward(grad.Pointer, ddy.Pointer, dx.Pointer, dw.Pointer, rstd.Pointer, rows, dim, accumulate: true, dxStride: dxStride), grad);
        var reference = CpuReference.RmsNormBackward(Bf16.ToDouble(dy), Bf16.ToDouble(x), Bf16.ToDouble(w), rows, dim, eps);
        var res = Bf16.ToDouble(residual);
        var all = AsBf16(outs[0]);
        var got = new ushort[rows * dim];
        var untouched = true;
        for (var r = 0; r < rows; r++)
        {
            for (var i = 0; i < dim; i++) reference[r * dim + i] += res[r * stride + i];
            all.AsSpan(r * stride, dim).CopyTo(got.AsSpan(r * dim));
            if (!all.AsSpan(r * stride + dim, stride - dim).SequenceEqual(residual.AsSpan(r * stride + dim, stride - dim))) untouched = false;
        }
        name ??= dxStride == 0 ? "rmsnorm_backward" : "rmsnorm_backward_strided";
        return new KernelCheckResult(name, seed, [new("dx (accumulated)", ErrorMetrics.Relative(got, reference), Bf16Tolerance)], det,
            untouched ? null : "dx's spare columns were written");
    }

    private KernelCheckResult Rope(int seed)
    {
        var rng = new Random(seed);
        const int rows = 96, heads = 8, headDim = 64;
        var freqs = RopeFrequencies.Llama3(headDim, 500000, 32, 1, 4, 8192);
        var positions = Enumerable.Range(0, rows).Select(_ => rng.Next(0, 8192)).ToArray();
        var x = Bf16.Random(rng, rows * heads * headDim);
        var dpos = Upload(positions);
        var dfreq = Upload(freqs);
        var buf = Alloc(x.Length * 2L);
        var (fwd, det1) = Twice(() => buf.Upload<ushort>(x), () => Kernels.Rope(buf.Pointer, heads, 0, 0, dpos.Pointer, dfreq.Pointer, rows, headDim, inverse: false), buf);
        var (inv, det2) = Twice(() => buf.Upload<ushort>(x), () => Kernels.Rope(buf.Pointer, heads, 0, 0, dpos.Pointer, dfreq.Pointer, rows, headDim, inverse: true), buf);
        var xd = Bf16.ToDouble(x);
        return new KernelCheckResult("rope_llama3", seed,
        [
            new("forward", ErrorMetrics.Relative(AsBf16(fwd[0]), CpuReference.Rope(xd, positions, freqs, rows, heads, headDim, false)), Bf16Tolerance),
            new("inverse", ErrorMetrics.Relative(AsBf16(inv[0]), CpuReference.Rope(xd, positions, freqs, rows, heads, headDim, true)), Bf16Tolerance),
        ], det1 && det2);
    }

    private KernelCheckResult RopeQK(string name, int seed, int rows, int qHeads, int kHeads, int headDim)
    {
        var rng = new Random(seed);
        var freqs = RopeFrequencies.Default(headDim, 10000);
        var positions = Enumerable.Range(0, rows).Select(_ => rng.Next(0, 8192)).ToArray();
        var q = Bf16.Random(rng, rows * qHeads * headDim);
        var k = Bf16.Random(rng, rows * kHeads * headDim);
        var dpos = Upload(positions);
        var dfreq = Upload(freqs);
        DeviceBuffer qb = Alloc(q.Length * 2L), kb = Alloc(k.Length * 2L);
        void Reset() { qb.Upload<ushort>(q); kb.Upload<ushort>(k); }
        var (fwd, det1) = Twice(Reset, () => Kernels.Rope(qb.Pointer, qHeads, kb.Pointer, kHeads, dpos.Pointer, dfreq.Pointer, rows, headDim, inverse: false), qb, kb);
        var (inv, det2) = Twice(Reset, () => Kernels.Rope(qb.Pointer, qHeads, kb.Pointer, kHeads, dpos.Pointer, dfreq.Pointer, rows, headDim, inverse: true), qb, kb);
        double[] qd = Bf16.ToDouble(q), kd = Bf16.ToDouble(k);
        return new KernelCheckResult(name, seed,
        [
            new("q forward", ErrorMetrics.Relative(AsBf16(fwd[0]), CpuReference.Rope(qd, positions, freqs, rows, qHeads, headDim, false)), Bf16Tolerance),
            new("k forward", ErrorMetrics.Relative(AsBf16(fwd[1]), CpuReference.Rope(kd, positions, freqs, rows, kHeads, headDim, false)), Bf16Tolerance),
            new("q inverse", ErrorMetrics.Relative(AsBf16(inv[0]), CpuReference.Rope(qd, positions, freqs, rows, qHeads, headDim, true)), Bf16Tolerance),
            new("k inverse", ErrorMetrics.Relative(AsBf16(inv[1]), CpuReference.Rope(kd, positions, freqs, rows, kHeads, headDim, true)), Bf16Tolerance),
        ], det1 && det2);
    }

    /// <summary>
    /// The packed rows [q | k | v] (ld = their width + <paramref name="pad"/>) hold in-place RoPE's rotated q and k and v
    /// as it was, bit for bit, and nothing is written past them in a row.
    /// </summary>
    private KernelCheckResult RopePacked(string name, int seed, int rows, int qHeads, int kHeads, int headDim, int pad)
    {
        var rng = new Random(seed);
        var freqs = RopeFrequencies.Default(headDim, 10000);
        var positions = Enumerable.Range(0, rows).Select(_ => rng.Next(0, 8192)).ToArray();
        int qw = qHeads * headDim, kw = kHeads * headDim, ld = qw + 2 * kw + pad;
        var q = Bf16.Random(rng, rows * qw);
        var k = Bf16.Random(rng, rows * kw);
        var v = Bf16.Random(rng, rows * kw);
        DeviceBuffer dpos = Upload(positions), dfreq = Upload(freqs), vb = Upload(v);
        DeviceBuffer qb = Alloc(q.Length * 2L), kb = Alloc(k.Length * 2L), packed = Alloc(rows * (long)ld * 2);
        void Reset() { qb.Upload<ushort>(q); kb.Upload<ushort>(k); }
        var (inPlace, det1) = Twice(Reset, () => Kernels.Rope(qb.Pointer, qHeads, kb.Pointer, kHeads, dpos.Pointer, dfreq.Pointer, rows, headDim, inverse: true), qb, kb);
        var (outs, det2) = Twice(Reset, () => Kernels.RopePacked(packed.Pointer, ld, qb.Pointer, qHeads, kb.Pointer, vb.Pointer, kHeads, dpos.Pointer, dfreq.Pointer, rows, headDim, inverse: true), packed);
        var rowsOut = outs[0];
        int mismatched = 0, padWritten = 0;
        for (var r = 0; r < rows; r++)
        {
            var row = rowsOut.AsSpan(r * ld * 2, ld * 2);
            if (!row[..(qw * 2)].SequenceEqual(inPlace[0].AsSpan(r * qw * 2, qw * 2))) mismatched++;
            if (!row.Slice(qw * 2, kw * 2).SequenceEqual(inPlace[1].AsSpan(r * kw * 2, kw * 2))) mismatched++;
            if (!row.Slice((qw + kw) * 2, kw * 2).SequenceEqual(MemoryMarshal.AsBytes(v.AsSpan(r * kw, kw)))) mismatched++;
            foreach (var b in row[((qw + 2 * kw) * 2)..]) if (b != 0xFF) padWritten++;
        }
        var failed = mismatched > 0 ? $"{mismatched} of {rows * 3} row parts differ from in-place RoPE (q, k) or the input (v)"
            : padWritten > 0 ? $"{padWritten} bytes written past the packed values" : null;
        return new KernelCheckResult(name, seed, [new("row parts not bit-equal to in-place RoPE", mismatched, 0)], det1 && det2, failed);
    }

    private const long SwiGluCount = 8 * 4099 + 5; // odd tail exercises the scalar path

    private KernelCheckResult SwiGluForward(int seed)
    {
        var rng = new Random(seed);
        var gate = Bf16.Random(rng, SwiGluCount, 4f);
        var up = Bf16.Random(rng, SwiGluCount, 2f);
        var dg = Upload(gate);
        var du = Upload(up);
        var h = Alloc(SwiGluCount * 2);
        var (outs, det) = Twice(() => { }, () => Kernels.SwiGluForward(h.Pointer, dg.Pointer, du.Pointer, SwiGluCount), h);
        var reference = CpuReference.SwiGlu(Bf16.ToDouble(gate), Bf16.ToDouble(up));
        return new KernelCheckResult("swiglu_forward", seed, [new("h", ErrorMetrics.Relative(AsBf16(outs[0]), reference), Bf16Tolerance)], det);
    }

    private KernelCheckResult SwiGluBackward(int seed)
    {
        var rng = new Random(seed);
        var gate = Bf16.Random(rng, SwiGluCount, 4f);
        var up = Bf16.Random(rng, SwiGluCount, 2f);
        var dh = Bf16.Random(rng, SwiGluCount);
        var dg = Upload(gate);
        var du = Upload(up);
        var ddh = Upload(dh);
        var outG = Alloc(SwiGluCount * 2);
        var outU = Alloc(SwiGluCount * 2);
        var (outs, det) = Twice(() => { }, () => Kernels.SwiGluBackward(outG.Pointer, outU.Pointer, ddh.Pointer, dg.Pointer, du.Pointer, SwiGluCount), outG, outU);
        var (rg, ru) = CpuReference.SwiGluBackward(Bf16.ToDouble(dh), Bf16.ToDouble(gate), Bf16.ToDouble(up));
        return new KernelCheckResult("swiglu_backward", seed,
            [new("dgate", ErrorMetrics.Relative(AsBf16(outs[0]), rg), Bf16Tolerance), new("dup", ErrorMetrics.Relative(AsBf16(outs[1]), ru), Bf16Tolerance)], det);
    }

    /// <summary>
    /// h = act(gate) · up and the in-place backward pass over rows holding [gate | up] (stride twice the width),
    /// as the fused gate/up product leaves them, against float64 on the de-interleaved halves.
    /// </summary>
    private KernelCheckResult GluRows(string name, int seed, bool gelu)
    {
        const int rows = 37, width = 1032, ld = 2 * width;
        var rng = new Random(seed);
        var both = Bf16.Random(rng, (long)rows * ld, 3f);
        var dh = Bf16.Random(rng, (long)rows * width);
        var gate = new ushort[rows * width];
        var up = new ushort[rows * width];
        for (var r = 0; r < rows; r++)
        {
            Array.Copy(both, r * ld, gate, r * width, width);
            Array.Copy(both, r * ld + width, up, r * width, width);
        }
        DeviceBuffer dBoth = Upload(both), ddh = Upload(dh);
        var h = Alloc((long)rows * width * 2);
        var grads = Alloc((long)rows * ld * 2);
        var hAgain = Alloc((long)rows * width * 2);
        long count = (long)rows * width;
        var (fwd, det1) = Twice(() => { }, () =>
        {
            if (gelu) Kernels.GeGluForward(h.Pointer, dBoth.Pointer, dBoth.Pointer + width * 2, count, width, ld);
            else Kernels.SwiGluForward(h.Pointer, dBoth.Pointer, dBoth.Pointer + width * 2, count, width, ld);
        }, h);
        // In place, as the model runs it: dgate and dup overwrite gate and up.
        var (bwd, det2) = Twice(() => grads.CopyFrom(dBoth, (long)rows * ld * 2), () =>
        {
            // With h: the backward pass also writes the forward pass's output again (GpuMemoryPlan.SharesGluOutput).
            if (gelu) Kernels.GeGluBackward(grads.Pointer, grads.Pointer + width * 2, ddh.Pointer, grads.Pointer, grads.Pointer + width * 2, count, width, ld, hAgain.Pointer);
            else Kernels.SwiGluBackward(grads.Pointer, grads.Pointer + width * 2, ddh.Pointer, grads.Pointer, grads.Pointer + width * 2, count, width, ld, hAgain.Pointer);
        }, grads, hAgain);
        double[] g = Bf16.ToDouble(gate), u = Bf16.ToDouble(up), d = Bf16.ToDouble(dh);
        var rh = gelu ? CpuReference.GeGlu(g, u) : CpuReference.SwiGlu(g, u);
        var (rg, ru) = gelu ? CpuReference.GeGluBackward(d, g, u) : CpuReference.SwiGluBackward(d, g, u);
        var all = AsBf16(bwd[0]);
        var outG = new ushort[rows * width];
        var outU = new ushort[rows * width];
        for (var r = 0; r < rows; r++)
        {
            Array.Copy(all, r * ld, outG, r * width, width);
            Array.Copy(all, r * ld + width, outU, r * width, width);
        }
        return new KernelCheckResult(name, seed,
        [
            new("h", ErrorMetrics.Relative(AsBf16(fwd[0]), rh), Bf16Tolerance),
            new("dgate", ErrorMetrics.Relative(outG, rg), Bf16Tolerance),
            new("dup", ErrorMetrics.Relative(outU, ru), Bf16Tolerance),
            new("h written by the backward pass: values whose bits differ from the forward pass's", AsBf16(bwd[1]).Zip(AsBf16(fwd[0]), (x, y) => x == y ? 0 : 1).Sum(), 0),
        ], det1 && det2);
    }

    /// <summary>Gemma's norm: weights stored as offsets from one, and the residual added in the same kernel (its sandwich norms).</summary>
    private KernelCheckResult RmsNormForwardGemma(int seed)
    {
        var rng = new Random(seed);
        const int rows = 48, dim = 1152;
        const float eps = 1e-6f;
        var x = Bf16.Random(rng, rows * dim, 2f);
        var w = Bf16.Random(rng, dim, 0.5f);
        var residual = Bf16.Random(rng, rows * dim, 3f);
        DeviceBuffer dx = Upload(x), dw = Upload(w), dr = Upload(residual);
        var y = Alloc(rows * dim * 2L);
        var rstd = Alloc(rows * 4L);
        var (outs, det) = Twice(() => { }, () => Kernels.RmsNormForward(y.Pointer, rstd.Pointer, dx.Pointer, dw.Pointer, rows, dim, eps, weightOffset: 1, residual: dr.Pointer), y, rstd);
        var (ry, rr) = CpuReference.RmsNorm(Bf16.ToDouble(x), Bf16.ToDouble(w).Select(v => v + 1).ToArray(), rows, dim, eps);
        var res = Bf16.ToDouble(residual);
        for (var i = 0; i < ry.Length; i++) ry[i] += res[i];
        return new KernelCheckResult("rmsnorm_forward_gemma", seed,
            [new("residual + y", ErrorMetrics.Relative(AsBf16(outs[0]), ry), Bf16Tolerance), new("rstd", ErrorMetrics.Relative(AsF32(outs[1]), rr), 1e-5)], det);
    }

    private KernelCheckResult RmsNormBackwardGemma(int seed)
    {
        var rng = new Random(seed);
        const int rows = 64, dim = 256;  // also the q/k norms' shape: rows of head_dim
        const float eps = 1e-6f;
        var x = Bf16.Random(rng, rows * dim, 2f);
        var w = Bf16.Random(rng, dim, 0.5f);
        var dy = Bf16.Random(rng, rows * dim);
        var w1 = Bf16.ToDouble(w).Select(v => v + 1).ToArray();
        var (_, rstdRef) = CpuReference.RmsNorm(Bf16.ToDouble(x), w1, rows, dim, eps);
        DeviceBuffer rstd = Upload(Array.ConvertAll(rstdRef, r => (float)r)), dx = Upload(x), dw = Upload(w), ddy = Upload(dy);
        var grad = Alloc(rows * dim * 2L);
        var (outs, det) = Twice(() => { },
            () => Kernels.RmsNormBackward(grad.Pointer, ddy.Pointer, dx.Pointer, dw.Pointer, rstd.Pointer, rows, dim, accumulate: false, weightOffset: 1), grad);
        var reference = CpuReference.RmsNormBackward(Bf16.ToDouble(dy), Bf16.ToDouble(x), w1, rows, dim, eps);
        return new KernelCheckResult("rmsnorm_backward_gemma", seed, [new("dx", ErrorMetrics.Relative(AsBf16(outs[0]), reference), Bf16Tolerance)], det);
    }

    private KernelCheckResult GeGluForward(int seed)
    {
        var rng = new Random(seed);
        var gate = Bf16.Random(rng, SwiGluCount, 4f);
        var up = Bf16.Random(rng, SwiGluCount, 2f);
        DeviceBuffer dg = Upload(gate), du = Upload(up);
        var h = Alloc(SwiGluCount * 2);
        var (outs, det) = Twice(() => { }, () => Kernels.GeGluForward(h.Pointer, dg.Pointer, du.Pointer, SwiGluCount), h);
        var reference = CpuReference.GeGlu(Bf16.ToDouble(gate), Bf16.ToDouble(up));
        return new KernelCheckResult("geglu_forward", seed, [new("h", ErrorMetrics.Relative(AsBf16(outs[0]), reference), Bf16Tolerance)], det);
    }

    private KernelCheckResult GeGluBackward(int seed)
    {
        var rng = new Random(seed);
        var gate = Bf16.Random(rng, SwiGluCount, 4f);
        var up = Bf16.Random(rng, SwiGluCount, 2f);
        var dh = Bf16.Random(rng, SwiGluCount);
        DeviceBuffer dg = Upload(gate), du = Upload(up), ddh = Upload(dh);
        var outG = Alloc(SwiGluCount * 2);
        var outU = Alloc(SwiGluCount * 2);
        var (outs, det) = Twice(() => { }, () => Kernels.GeGluBackward(outG.Pointer, outU.Pointer, ddh.Pointer, dg.Pointer, du.Pointer, SwiGluCount), outG, outU);
        var (rg, ru) = CpuReference.GeGluBackward(Bf16.ToDouble(dh), Bf16.ToDouble(gate), Bf16.ToDouble(up));
        return new KernelCheckResult("geglu_backward", seed,
            [new("dgate", ErrorMetrics.Relative(AsBf16(outs[0]), rg), Bf16Tolerance), new("dup", ErrorMetrics.Relative(AsBf16(outs[1]), ru), Bf16Tolerance)], det);
    }

    private KernelCheckResult Attention(string name, int seed, AttentionShape s, AttentionForwardTiling tiling,
        AttentionBackwardTiling backwardTiling = AttentionBackwardTiling.Auto, bool separateLaunches = false)
    {
        (tiling, backwardTiling) = WithoutHopper(tiling, backwardTiling, s.HeadDim);
        var rng = new Random(seed);
        long qn = (long)s.Batch * s.SeqLen * s.QueryHeads * s.HeadDim, kn = (long)s.Batch * s.SeqLen * s.KvHeads * s.HeadDim;
        var q = Bf16.Random(rng, qn, 1.5f);
        var k = Bf16.Random(rng, kn, 1.5f);
        var v = Bf16.Random(rng, kn);
        var dout = Bf16.Random(rng, qn);
        DeviceBuffer dq = Upload(q), dk = Upload(k), dv = Upload(v), ddo = Upload(dout);
        var o = Alloc(qn * 2);
        var lse = Alloc((long)s.Batch * s.QueryHeads * s.SeqLen * 4);
        var delta = Alloc((long)s.Batch * s.QueryHeads * s.SeqLen * 4);
        DeviceBuffer gq = Alloc(qn * 2), gk = Alloc(kn * 2), gv = Alloc(kn * 2);
        var (fwd, det1) = Twice(() => { }, () =>
        {
            Kernels.ForwardTiling = tiling;
            try
            {
                Kernels.AttentionForward(o.Pointer, lse.Pointer, dq.Pointer, dk.Pointer, dv.Pointer, s);
            }
            finally
            {
                Kernels.ForwardTiling = AttentionForwardTiling.Auto;
            }
        }, o, lse);
        // The backward pass consumes the forward's own output and lse, as in training.
        var (bwd, det2) = Twice(() => { }, () =>
        {
            Kernels.BackwardTiling = backwardTiling;
            try
            {
                // The dK/dV and dQ kernels normally share one launch; separately they run as the benchmark times them.
                foreach (var stages in separateLaunches
                    ? new[] { AttentionBackwardStages.Delta | AttentionBackwardStages.KeyValue, AttentionBackwardStages.Query }
                    : [AttentionBackwardStages.All])
                {
                    Kernels.BackwardStages = stages;
                    Kernels.AttentionBackward(gq.Pointer, gk.Pointer, gv.Pointer, dq.Pointer, dk.Pointer, dv.Pointer, o.Pointer, ddo.Pointer, lse.Pointer, delta.Pointer, s);
                }
            }
            finally
            {
                Kernels.BackwardTiling = AttentionBackwardTiling.Auto;
                Kernels.BackwardStages = AttentionBackwardStages.All;
            }
        }, gq, gk, gv);
        var r = CpuReference.Attention(Bf16.ToDouble(q), Bf16.ToDouble(k), Bf16.ToDouble(v), Bf16.ToDouble(dout), s.Batch, s.SeqLen, s.QueryHeads, s.KvHeads, s.HeadDim,
            s.Window, s.SoftmaxScale);
        return new KernelCheckResult(name, seed,
        [
            new("out", ErrorMetrics.Relative(AsBf16(fwd[0]), r.Out), Bf16Tolerance),
            new("lse", ErrorMetrics.Relative(AsF32(fwd[1]), r.Lse), 1e-4),
            new("dq", ErrorMetrics.Relative(AsBf16(bwd[0]), r.DQ), Bf16GradTolerance),
            new("dk", ErrorMetrics.Relative(AsBf16(bwd[1]), r.DK), Bf16GradTolerance),
            new("dv", ErrorMetrics.Relative(AsBf16(bwd[2]), r.DV), Bf16GradTolerance),
        ], det1 && det2);
    }

    private KernelCheckResult CrossEntropy(int seed)
    {
        var rng = new Random(seed);
        const int rows = 96, dim = 256, vocab = 5000, chunk = 1024;
        var hidden = Bf16.Random(rng, rows * dim);
        var weight = Bf16.Random(rng, (long)vocab * dim, 0.25f);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.NextDouble() < 0.2 ? -100 : rng.Next(vocab)).ToArray();
        var valid = Math.Max(1, targets.Count(t => t >= 0));
        var gradScale = 1f / valid;
        DeviceBuffer dh = Upload(hidden), dw = Upload(weight), dt = Upload(targets);
        var grad = Alloc(rows * dim * 2L);
        var loss = Alloc(rows * 4L);
        using var op = new LmHeadCrossEntropy(Kernels, rows, dim, vocab, chunk);
        var (outs, det) = Twice(() => { }, () => op.Run(grad.Pointer, loss.Pointer, dh.Pointer, dw.Pointer, dt.Pointer, gradScale), grad, loss);
        var (rl, rg) = CpuReference.LmHeadCrossEntropy(Bf16.ToDouble(hidden), Bf16.ToDouble(weight), targets, rows, dim, vocab, gradScale);
        return new KernelCheckResult("lm_head_cross_entropy", seed,
            [new("loss", ErrorMetrics.Relative(AsF32(outs[1]), rl), 1e-4), new("dhidden", ErrorMetrics.Relative(AsBf16(outs[0]), rg), Bf16GradTolerance)], det);
    }

    private KernelCheckResult AdamW(int seed)
    {
        var rng = new Random(seed);
        const int n = 10007, step = 3;
        const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, clip = 0.5f;
        float[] R(double scale) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
        var p0 = R(1);
        var g = R(1);
        var m0 = R(0.1);
        var v0 = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 0.01)).ToArray();
        DeviceBuffer dp = Alloc(n * 4L), dg = Upload(g), dm = Alloc(n * 4L), dv = Alloc(n * 4L);
        var (outs, det) = Twice(() => { dp.Upload<float>(p0); dm.Upload<float>(m0); dv.Upload<float>(v0); },
            () => Kernels.AdamW(dp.Pointer, dg.Pointer, dm.Pointer, dv.Pointer, n, step, lr, b1, b2, eps, wd, clip), dp, dm, dv);
        double[] D(float[] a) => Array.ConvertAll(a, x => (double)x);
        double[] rp = D(p0), rm = D(m0), rv = D(v0);
        CpuReference.AdamW(rp, D(g), rm, rv, step, lr, b1, b2, eps, wd, clip);
        // Compare the update (p_new - p_old), not p itself, so a wrong step cannot hide under |p|.
        var gotUpdate = AsF32(outs[0]).Select((x, i) => (double)x - p0[i]).ToArray();
        var refUpdate = rp.Select((x, i) => x - p0[i]).ToArray();
        return new KernelCheckResult("adamw", seed,
        [
            new("update", ErrorMetrics.Relative(gotUpdate, refUpdate), 1e-4),
            new("m", ErrorMetrics.Relative(AsF32(outs[1]), rm), F32Tolerance),
            new("v", ErrorMetrics.Relative(AsF32(outs[2]), rv), F32Tolerance),
        ], det);
    }

    private KernelCheckResult SumSquares(int seed)
    {
        var rng = new Random(seed);
        const int n = 100003;
        var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var dx = Upload(x);
        var scratch = Alloc(Kernels.SumSquaresPartials * 4L);
        var result = Alloc(4);
        var (outs, det) = Twice(() => { }, () => Kernels.SumSquares(result.Pointer, dx.Pointer, n, scratch.Pointer), result);
        var reference = x.Sum(v => (double)v * v);
        return new KernelCheckResult("sum_squares", seed, [new("sum", ErrorMetrics.Relative(AsF32(outs[0]), [reference]), F32Tolerance)], det);
    }

    private KernelCheckResult Convert(int seed)
    {
        var rng = new Random(seed);
        const int n = 4 * 1000 + 3;
        var f = Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-20, 20)))).ToArray();
        var b = Bf16.Random(rng, n, 3f);
        DeviceBuffer df = Upload(f), db = Upload(b);
        var toBf = Alloc(n * 2L);
        var toF = Alloc(n * 4L);
        var (outs, det) = Twice(() => { }, () => { Kernels.Float32ToBFloat16(toBf.Pointer, df.Pointer, n); Kernels.BFloat16ToFloat32(toF.Pointer, db.Pointer, n); }, toBf, toF);
        // Both directions must be exact: bf16 rounding is to nearest even, as on the host.
        var gotBf = AsBf16(outs[0]);
        var mismatches = Enumerable.Range(0, n).Count(i => gotBf[i] != Bf16.FromSingle(f[i]));
        var refF = Bf16.ToDouble(b);
        return new KernelCheckResult("convert_bf16_f32", seed,
        [
            new("f32->bf16 (mismatched values)", mismatches, 0),
            new("bf16->f32", ErrorMetrics.Relative(AsF32(outs[1]), refF), 0),
        ], det);
    }

    private KernelCheckResult Embedding(int seed)
    {
        var rng = new Random(seed);
        const int rows = 37, dim = 256, vocab = 1000;
        var table = Bf16.Random(rng, vocab * dim);
        var ids = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        DeviceBuffer dt = Upload(table), di = Upload(ids);
        var output = Alloc(rows * dim * 2L);
        var (outs, det) = Twice(() => { }, () => Kernels.EmbeddingForward(output.Pointer, dt.Pointer, di.Pointer, rows, dim), output);
        var reference = new double[rows * dim];
        for (var r = 0; r < rows; r++)
            for (var d = 0; d < dim; d++)
                reference[r * dim + d] = Bf16.ToSingle(table[ids[r] * dim + d]);
        return new KernelCheckResult("embedding", seed, [new("rows", ErrorMetrics.Relative(AsBf16(outs[0]), reference), 0)], det);
    }

    /// <summary>Gemma's scaled lookup: each row times sqrt(hidden_size), rounded once to bf16.</summary>
    private KernelCheckResult EmbeddingScaled(int seed)
    {
        var rng = new Random(seed);
        const int rows = 37, dim = 640, vocab = 1000;
        var scale = MathF.Sqrt(dim);
        var table = Bf16.Random(rng, vocab * dim);
        var ids = Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray();
        DeviceBuffer dt = Upload(table), di = Upload(ids);
        var output = Alloc(rows * dim * 2L);
        var (outs, det) = Twice(() => { }, () => Kernels.EmbeddingForward(output.Pointer, dt.Pointer, di.Pointer, rows, dim, scale), output);
        var got = AsBf16(outs[0]);
        // fp32 product rounded to nearest even: exactly what the host computes.
        var mismatches = 0;
        for (var r = 0; r < rows; r++)
            for (var d = 0; d < dim; d++)
                mismatches += got[r * dim + d] == Bf16.FromSingle(Bf16.ToSingle(table[ids[r] * dim + d]) * scale) ? 0 : 1;
        return new KernelCheckResult("embedding_scaled", seed, [new("values differing from the fp32 product rounded to bf16", mismatches, 0)], det);
    }

    // The pool's accounting and reuse: expected values follow from the size classes alone.
    private KernelCheckResult MemoryPool(int seed)
    {
        var rng = new Random(seed);
        var pool = Device.Memory;
        var inUse0 = pool.BytesInUse;
        pool.ResetPeak();
        var sizes = Enumerable.Range(0, 6).Select(_ => (long)rng.Next(1, 8 << 20)).ToArray();
        var blocks = sizes.Select(pool.Allocate).ToList();
        var expectedInUse = sizes.Sum(CudaMemoryPool.RoundSize);
        var mismatches = 0;
        mismatches += pool.BytesInUse - inUse0 == expectedInUse ? 0 : 1;
        mismatches += pool.PeakBytesInUse - inUse0 == expectedInUse ? 0 : 1;
        var pointers = blocks.Select(b => b.Pointer).ToHashSet();
        foreach (var b in blocks)
            b.Dispose();
        mismatches += pool.BytesInUse == inUse0 ? 0 : 1;
        var hits = pool.CacheHits;
        // The same sizes again come from the free lists: the same addresses, no driver call.
        var again = sizes.Select(pool.Allocate).ToList();
        mismatches += pool.CacheHits - hits == sizes.Length ? 0 : 1;
        mismatches += again.All(b => pointers.Contains(b.Pointer)) ? 0 : 1;
        // Each block is usable end to end.
        foreach (var b in again)
        {
            b.FillBytes(0x5A);
            var tail = new byte[16];
            b.Download<byte>(tail);
            mismatches += tail.All(x => x == 0x5A) ? 0 : 1;
            b.Dispose();
        }
        mismatches += pool.PeakBytesInUse - inUse0 == expectedInUse ? 0 : 1;
        return new KernelCheckResult("memory_pool", seed, [new("accounting mismatches", mismatches, 0)], true);
    }

    // NVRTC's on-disk cache: a second load of the same source and options compiles nothing, new options compile again.
    private KernelCheckResult KernelCache(int seed)
    {
        var dir = Directory.CreateTempSubdirectory("ft-cuda-cache-");
        try
        {
            var compiler = new KernelCompiler(Device, dir.FullName);
            var mismatches = 0;
            using (compiler.Load("convert.cu", $"CACHE_PROBE={seed}")) { }
            mismatches += compiler.Compilations == 1 && compiler.CacheHits == 0 ? 0 : 1;
            using (var module = compiler.Load("convert.cu", $"CACHE_PROBE={seed}"))
            {
                module.Kernel("f32_to_bf16");
            }
            mismatches += compiler.Compilations == 1 && compiler.CacheHits == 1 ? 0 : 1;
            using (compiler.Load("convert.cu", $"CACHE_PROBE={seed + 1L}")) { }
            mismatches += compiler.Compilations == 2 ? 0 : 1;
            mismatches += Directory.GetFiles(dir.FullName, "*.cubin").Length == 2 ? 0 : 1;
            return new KernelCheckResult("kernel_cache", seed, [new("cache mismatches", mismatches, 0)], true);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private KernelCheckResult FillUniform(int seed)
    {
        const int n = 10001;
        const float scale = 0.75f;
        var bf = Alloc(n * 2L);
        var f32 = Alloc(n * 4L);
        var (outs, det) = Twice(() => { }, () =>
        {
            Kernels.FillUniform(bf.Pointer, n, (ulong)seed, scale);
            Kernels.FillUniform(f32.Pointer, n, (ulong)seed, scale, float32: true);
        }, bf, f32);
        var reference = Enumerable.Range(0, n).Select(i => (double)UniformHash.Value((ulong)i, (ulong)seed, scale)).ToArray();
        var gotBf = AsBf16(outs[0]);
        var mismatches = Enumerable.Range(0, n).Count(i => gotBf[i] != Bf16.FromSingle((float)reference[i]));
        return new KernelCheckResult("fill_uniform", seed,
            [new("f32", ErrorMetrics.Relative(AsF32(outs[1]), reference), 0), new("bf16 (mismatched values)", mismatches, 0)], det);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Device.MakeCurrent();
        Kernels.Dispose();
        Blas.Dispose();
        Device.Dispose();
    }
}
