using System.Text.Json.Nodes;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Bench.KernelBench;

/// <summary>
/// Times each kernel at Llama-3.2-1B LoRA training shapes (batch 4 x 2048 tokens) on random data
/// and relates it to the measured ceilings: memory-bound kernels to the device-to-device copy
/// bandwidth, matrix-bound ones to a large cuBLASLt bf16 GEMM.
/// </summary>
internal sealed class KernelTimings(KernelChecks checks, JsonLines output)
{
    private const int Batch = 4, Seq = 2048, Tokens = Batch * Seq;
    private const int Hidden = 2048, Heads = 32, KvHeads = 8, HeadDim = 64, Intermediate = 8192, Vocab = 128256;
    private const int LoraRank = 16, Layers = 16;

    private readonly CudaDevice _device = checks.Device;
    private readonly CudaKernels _k = checks.Kernels;
    private readonly List<DeviceBuffer> _buffers = [];
    private ulong _seed = 1;
    private double _copyGBs, _gemmTflops;

    private DeviceBuffer Random(long count, float scale = 1f, bool f32 = false)
    {
        var buffer = _device.Memory.Allocate(count * (f32 ? 4 : 2));
        _buffers.Add(buffer);
        _k.FillUniform(buffer.Pointer, count, _seed++, scale, f32);
        return buffer;
    }

    private DeviceBuffer Empty(long bytes)
    {
        var buffer = _device.Memory.Allocate(bytes);
        _buffers.Add(buffer);
        buffer.FillBytes(0);
        return buffer;
    }

    private void Release()
    {
        _device.Synchronize();
        foreach (var b in _buffers)
            b.Dispose();
        _buffers.Clear();
    }

    /// <summary>Copies of an input set, enough that rotating through them defeats the L2 cache.</summary>
    private int SetsFor(long bytesPerSet) => (int)Math.Clamp(3L * _device.L2CacheBytes / Math.Max(1, bytesPerSet) + 1, 1, 8);

    private void Emit(string name, double ms, double bytes = 0, double flops = 0, string? note = null)
    {
        var line = new JsonObject { ["kind"] = "timing", ["name"] = name, ["ms"] = JsonLines.Round(ms, 4) };
        if (bytes > 0)
        {
            var gbs = bytes / (ms * 1e-3) / 1e9;
            line["gb_per_s"] = JsonLines.Round(gbs, 1);
            if (_copyGBs > 0)
                line["pct_of_ceiling"] = JsonLines.Round(100 * gbs / _copyGBs, 1);
        }
        if (flops > 0)
        {
            var tflops = flops / (ms * 1e-3) / 1e12;
            line["tflops"] = JsonLines.Round(tflops, 1);
            if (_gemmTflops > 0)
                line["pct_of_ceiling"] = JsonLines.Round(100 * tflops / _gemmTflops, 1);
        }
        if (note is not null)
            line["note"] = note;
        output.Emit(line);
    }

    public void Run()
    {
        using var timer = new GpuTimer(_device);
        Ceilings(timer);
        LinearGemms(timer);
        Norm(timer);
        Rope(timer);
        SwiGlu(timer);
        CrossEntropy(timer);
        Optimizer(timer);
        Conversions(timer);
        output.Emit(new JsonObject
        {
            ["kind"] = "memory_pool",
            ["peak_gib"] = JsonLines.Round(_device.Memory.PeakBytesInUse / (double)(1L << 30), 3),
            ["reserved_gib"] = JsonLines.Round(_device.Memory.BytesReserved / (double)(1L << 30), 3),
            ["driver_allocations"] = _device.Memory.DriverAllocations,
            ["cache_hits"] = _device.Memory.CacheHits,
        });
    }

    private void Ceilings(GpuTimer timer)
    {
        const long bytes = 1L << 30;
        var src = Random(bytes / 2);
        var dst = Empty(bytes);
        var ms = timer.MedianMs(_ => dst.CopyFrom(src, bytes));
        _copyGBs = 2.0 * bytes / (ms * 1e-3) / 1e9;
        Emit("ceiling_d2d_copy_1GiB", ms, bytes: 2.0 * bytes, note: "bytes read + written");

        const int n = 8192;
        var a = Random((long)n * n);
        var b = Random((long)n * n);
        var c = Empty((long)n * n * 2);
        ms = timer.MedianMs(_ => checks.Blas.Gemm(a.Pointer, false, b.Pointer, true, c.Pointer, n, n, n), warmup: 3, iterations: 15);
        _gemmTflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
        Emit("ceiling_gemm_bf16_8192^3", ms, flops: 2.0 * n * n * n);
        Release();
    }

    private void LinearGemms(GpuTimer timer)
    {
        // (name, in, out) of the seven projections; forward Y = X·Wᵀ and input gradient dX = dY·W
        // (the base weights are frozen, so no weight gradient).
        foreach (var (name, inDim, outDim) in new[] { ("q_o_proj", Hidden, Hidden), ("k_v_proj", Hidden, KvHeads * HeadDim), ("gate_up_proj", Hidden, Intermediate), ("down_proj", Intermediate, Hidden) })
        {
            var x = Random((long)Tokens * inDim);
            var w = Random((long)outDim * inDim, 0.02f);
            var y = Empty((long)Tokens * outDim * 2);
            var flops = 2.0 * Tokens * inDim * outDim;
            Emit($"linear_fwd_{name}", timer.MedianMs(_ => checks.Blas.Gemm(x.Pointer, false, w.Pointer, true, y.Pointer, Tokens, outDim, inDim)), flops: flops);
            Emit($"linear_dx_{name}", timer.MedianMs(_ => checks.Blas.Gemm(y.Pointer, false, w.Pointer, false, x.Pointer, Tokens, inDim, outDim)), flops: flops);
            Release();
        }
    }

    private void Norm(GpuTimer timer)
    {
        long n = (long)Tokens * Hidden;
        var sets = SetsFor(n * 2 * 3);
        var x = Enumerable.Range(0, sets).Select(_ => Random(n, 2f)).ToArray();
        var dy = Enumerable.Range(0, sets).Select(_ => Random(n)).ToArray();
        var y = Enumerable.Range(0, sets).Select(_ => Empty(n * 2)).ToArray();
        var w = Random(Hidden);
        var rstd = Empty(Tokens * 4L);
        Emit("rmsnorm_fwd", timer.MedianMs(i => _k.RmsNormForward(y[i % sets].Pointer, rstd.Pointer, x[i % sets].Pointer, w.Pointer, Tokens, Hidden, 1e-5f)),
            bytes: 2.0 * n * 2);
        Emit("rmsnorm_bwd_accumulate", timer.MedianMs(i => _k.RmsNormBackward(y[i % sets].Pointer, dy[i % sets].Pointer, x[i % sets].Pointer, w.Pointer, rstd.Pointer, Tokens, Hidden, true)),
            bytes: 4.0 * n * 2);
        Release();
    }

    private void Rope(GpuTimer timer)
    {
        var freqs = RopeFrequencies.Llama3(HeadDim, 500000, 32, 1, 4, 8192);
        var f = _device.Memory.Allocate(freqs.Length * 4L);
        _buffers.Add(f);
        f.Upload<float>(freqs);
        var positions = Enumerable.Range(0, Tokens).Select(i => i % Seq).ToArray();
        var p = _device.Memory.Allocate(Tokens * 4L);
        _buffers.Add(p);
        p.Upload<int>(positions);
        long qn = (long)Tokens * Heads * HeadDim, kn = (long)Tokens * KvHeads * HeadDim;
        var sets = SetsFor((qn + kn) * 2);
        var q = Enumerable.Range(0, sets).Select(_ => Random(qn)).ToArray();
        var k = Enumerable.Range(0, sets).Select(_ => Random(kn)).ToArray();
        // One launch for both, as training runs it.
        Emit("rope_q_and_k", timer.MedianMs(i => _k.Rope(q[i % sets].Pointer, Heads, k[i % sets].Pointer, KvHeads, p.Pointer, f.Pointer, Tokens, HeadDim, false)),
            bytes: 2.0 * (qn + kn) * 2);
        Release();
    }

    private void SwiGlu(GpuTimer timer)
    {
        long n = (long)Tokens * Intermediate;
        var gate = Random(n, 4f);
        var up = Random(n, 2f);
        var dh = Random(n);
        var h = Empty(n * 2);
        var dg = Empty(n * 2);
        var du = Empty(n * 2);
        Emit("swiglu_fwd", timer.MedianMs(_ => _k.SwiGluForward(h.Pointer, gate.Pointer, up.Pointer, n)), bytes: 3.0 * n * 2);
        Emit("swiglu_bwd", timer.MedianMs(_ => _k.SwiGluBackward(dg.Pointer, du.Pointer, dh.Pointer, gate.Pointer, up.Pointer, n)), bytes: 5.0 * n * 2);
        Release();
    }

    private void CrossEntropy(GpuTimer timer)
    {
        var hidden = Random((long)Tokens * Hidden);
        var weight = Random((long)Vocab * Hidden, 0.05f);
        var rng = new System.Random(7);
        var targets = Enumerable.Range(0, Tokens).Select(i => i % 5 == 0 ? -100 : rng.Next(Vocab)).ToArray();
        var t = _device.Memory.Allocate(Tokens * 4L);
        _buffers.Add(t);
        t.Upload<int>(targets);
        var dh = Empty((long)Tokens * Hidden * 2);
        var loss = Empty(Tokens * 4L);
        using var op = new LmHeadCrossEntropy(_k, Tokens, Hidden, Vocab, chunk: 8192);
        var ms = timer.MedianMs(_ => op.Run(dh.Pointer, loss.Pointer, hidden.Pointer, weight.Pointer, t.Pointer, 1f / Tokens), warmup: 2, iterations: 9);
        Emit("lm_head_cross_entropy_fused", ms, flops: 4.0 * Tokens * Vocab * Hidden,
            note: $"2 GEMMs of {Tokens}x{Vocab}x{Hidden} per call; workspace {op.WorkspaceBytes / (double)(1L << 20):0} MiB instead of {(double)Tokens * Vocab * 4 / (1L << 30):0.0} GiB of fp32 logits");
        Release();
    }

    private void Optimizer(GpuTimer timer)
    {
        // LoRA r=16 on all seven projections of 16 layers: r·(in+out) per projection.
        var perLayer = LoraRank * ((Hidden + Hidden) * 2 + (Hidden + KvHeads * HeadDim) * 2 + (Hidden + Intermediate) * 2 + (Intermediate + Hidden));
        var n = perLayer * Layers;
        var p = Random(n, 1f, f32: true);
        var g = Random(n, 1f, f32: true);
        var m = Random(n, 0.1f, f32: true);
        var v = Empty(n * 4L);
        var scratch = Empty(_k.SumSquaresPartials * 4L);
        var result = Empty(4);
        Emit("adamw_lora_params", timer.MedianMs(i => _k.AdamW(p.Pointer, g.Pointer, m.Pointer, v.Pointer, n, i + 1, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f)),
            bytes: 28.0 * n, note: $"{n} fp32 parameters");
        Emit("grad_sum_squares", timer.MedianMs(_ => _k.SumSquares(result.Pointer, g.Pointer, n, scratch.Pointer)), bytes: 4.0 * n);
        Release();
    }

    private void Conversions(GpuTimer timer)
    {
        long n = (long)Tokens * Intermediate;
        var f = Random(n, 1f, f32: true);
        var b = Empty(n * 2);
        Emit("f32_to_bf16", timer.MedianMs(_ => _k.Float32ToBFloat16(b.Pointer, f.Pointer, n)), bytes: 6.0 * n);
        Emit("bf16_to_f32", timer.MedianMs(_ => _k.BFloat16ToFloat32(f.Pointer, b.Pointer, n)), bytes: 6.0 * n);
        var table = Random((long)Vocab * Hidden);
        var ids = _device.Memory.Allocate(Tokens * 4L);
        _buffers.Add(ids);
        var rng = new System.Random(11);
        ids.Upload<int>(Enumerable.Range(0, Tokens).Select(_ => rng.Next(Vocab)).ToArray());
        var emb = Empty((long)Tokens * Hidden * 2);
        Emit("embedding_fwd", timer.MedianMs(_ => _k.EmbeddingForward(emb.Pointer, table.Pointer, ids.Pointer, Tokens, Hidden)), bytes: 2.0 * Tokens * Hidden * 2);
        Release();
    }
}
