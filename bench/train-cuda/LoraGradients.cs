using System.Text.Json.Nodes;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;

/// <summary>
/// One model's LoRA weight-gradient products both ways at its training shape's token count: lora_grad.cu's one launch
/// (<see cref="LoraGradientKernels"/>) and cuBLASLt (its split-K product and reduction kernel), dB += dYᵀ·h for each
/// projection's output width and dA += gᵀ·x for q/k/v's and gate/up's groups and o/down alone. Medians of CUDA-event
/// timings over inputs rotated through copies that together exceed the L2 cache, as a training step never finds them there.
/// </summary>
internal static class LoraGradients
{
    public static IEnumerable<JsonObject> Run(ModelConfig c, string shape, int tokens, int rank)
    {
        using var ctx = CudaTrainingContext.Open();
        var device = ctx.Device;
        device.SynchronizeAfterLaunch = false;
        using var workspace = device.Memory.Allocate(LoraGradientKernels.WorkspaceBytes);
        workspace.FillBytes(0);
        using var start = new CudaEvent(device);
        using var end = new CudaEvent(device);
        double Median(Action<int> work)
        {
            for (var i = 0; i < 3; i++) work(i);
            device.Synchronize();
            var times = new double[25];
            for (var i = 0; i < times.Length; i++)
            {
                start.Record(device.Stream);
                work(i);
                end.Record(device.Stream);
                end.Synchronize();
                times[i] = end.ElapsedSince(start);
            }
            Array.Sort(times);
            return times[times.Length / 2];
        }
        int h = c.HiddenSize, q = c.QDim, kv = c.KvDim, inter = c.IntermediateSize;
        // (what, wide side, narrow side): dB is [out, r] from dY [tokens, out] and h [tokens, r]; dA is [members·r, in] from g and x.
        (string What, int Wide, int Narrow, bool GradA)[] products =
        [
            ("dB q/o", q, rank, false), ("dB k/v", kv, rank, false), ("dB gate/up", inter, rank, false), ("dB down", h, rank, false),
            ("dA q/k/v", h, 3 * rank, true), ("dA gate/up", h, 2 * rank, true), ("dA o", q, rank, true), ("dA down", inter, rank, true),
        ];
        foreach (var (what, wide, narrow, gradA) in products)
        {
            var bytes = (long)tokens * (wide + narrow) * 2;
            var sets = (int)Math.Clamp(3 * device.L2CacheBytes / bytes + 1, 1, 8);
            var wideBufs = Enumerable.Range(0, sets).Select(i => device.Memory.Allocate((long)tokens * wide * 2)).ToArray();
            var narrowBufs = Enumerable.Range(0, sets).Select(i => device.Memory.Allocate((long)tokens * narrow * 2)).ToArray();
            for (var i = 0; i < sets; i++)
            {
                ctx.Kernels.FillUniform(wideBufs[i].Pointer, (long)tokens * wide, (ulong)(10 + i), 1f);
                ctx.Kernels.FillUniform(narrowBufs[i].Pointer, (long)tokens * narrow, (ulong)(20 + i), 1f);
            }
            using var grad = device.Memory.Allocate((long)wide * narrow * 4);
            grad.FillBytes(0);
            // dB: A = dY (wide), B = h (narrow), C [wide, narrow]; dA: A = g (narrow), B = x (wide), C [narrow, wide].
            int m = gradA ? narrow : wide, n = gradA ? wide : narrow;
            ulong A(int i) => gradA ? narrowBufs[i % sets].Pointer : wideBufs[i % sets].Pointer;
            ulong B(int i) => gradA ? wideBufs[i % sets].Pointer : narrowBufs[i % sets].Pointer;
            var ours = Median(i =>
            {
                if (!ctx.LoraGradients.TryAccumulate(workspace.Pointer, new GradientProduct(grad.Pointer, A(i), m, B(i), n, m, n, tokens)))
                    throw new InvalidOperationException($"lora_grad refused {m} x {n}");
            });
            var blas = Median(i => ctx.Blas.Gemm(A(i), true, B(i), false, grad.Pointer, m, n, tokens, float32Output: true, beta: 1f));
            var split = LoraGradientKernels.Plan(wide, narrow, tokens, 2 * device.MultiprocessorCount);
            foreach (var b in wideBufs.Concat(narrowBufs)) b.Dispose();
            yield return new JsonObject
            {
                ["kind"] = "lora_gradient", ["shape"] = shape, ["product"] = what, ["m"] = m, ["n"] = n, ["tokens"] = tokens,
                ["lora_grad_ms"] = Math.Round(ours, 4), ["cublaslt_ms"] = Math.Round(blas, 4), ["speedup"] = Math.Round(blas / ours, 3),
                ["lora_grad_gb_per_s"] = Math.Round(bytes / (ours * 1e-3) / 1e9, 1), ["slices"] = split.Slices, ["grid"] = $"{split.Slices}x{split.QTiles}x{split.PTiles}",
                ["device"] = device.Name,
            };
        }

        // A layer's eleven gradients as training queues them: four flushes (q/k/v's dB with their dA, gate/up's, o's,
        // down's), each one or two launches, against eleven cuBLASLt products with their reductions.
        var buffers = new List<DeviceBuffer>();
        ulong Buf(long elements)
        {
            var b = device.Memory.Allocate(elements * 2);
            buffers.Add(b);
            ctx.Kernels.FillUniform(b.Pointer, elements, (ulong)(50 + buffers.Count), 1f);
            return b.Pointer;
        }
        long t = tokens;
        ulong dq = Buf(t * q), dk = Buf(t * kv), dv = Buf(t * kv), dGateUp = Buf(t * 2 * inter), dO = Buf(t * h), dDown = Buf(t * h);
        ulong hQkv = Buf(t * 3 * rank), hGateUp = Buf(t * 2 * rank), hO = Buf(t * rank), hDown = Buf(t * rank);
        ulong gQkv = Buf(t * 3 * rank), gGateUp = Buf(t * 2 * rank), gO = Buf(t * rank), gDown = Buf(t * rank);
        ulong norm1 = Buf(t * h), norm2 = Buf(t * h), att = Buf(t * q), act = Buf(t * inter);
        using var grads = device.Memory.Allocate(4L * rank * (q + 2 * kv + 2 * inter + h + 3 * h + 2 * h + q + inter));
        grads.FillBytes(0);
        var next = grads.Pointer;
        ulong Grad(int count) { var at = next; next += (ulong)count * 4; return at; }
        GradientProduct[][] flushes =
        [
            [new(Grad(q * rank), dq, q, hQkv, 3 * rank, q, rank, tokens), new(Grad(kv * rank), dk, kv, hQkv + (ulong)(rank * 2), 3 * rank, kv, rank, tokens),
             new(Grad(kv * rank), dv, kv, hQkv + (ulong)(2 * rank * 2), 3 * rank, kv, rank, tokens), new(Grad(3 * rank * h), gQkv, 3 * rank, norm1, h, 3 * rank, h, tokens)],
            [new(Grad(inter * rank), dGateUp, 2 * inter, hGateUp, 2 * rank, inter, rank, tokens), new(Grad(inter * rank), dGateUp + (ulong)(inter * 2), 2 * inter, hGateUp + (ulong)(rank * 2), 2 * rank, inter, rank, tokens),
             new(Grad(2 * rank * h), gGateUp, 2 * rank, norm2, h, 2 * rank, h, tokens)],
            [new(Grad(h * rank), dO, h, hO, rank, h, rank, tokens), new(Grad(rank * q), gO, rank, att, q, rank, q, tokens)],
            [new(Grad(h * rank), dDown, h, hDown, rank, h, rank, tokens), new(Grad(rank * inter), gDown, rank, act, inter, rank, inter, tokens)],
        ];
        var oursLayer = Median(_ =>
        {
            foreach (var f in flushes)
                if (ctx.LoraGradients.Accumulate(workspace.Pointer, f).Count > 0) throw new InvalidOperationException("lora_grad refused a layer product");
        });
        var blasLayer = Median(_ =>
        {
            foreach (var f in flushes)
                foreach (var g in f) ctx.Blas.Gemm(g.A, true, g.B, false, g.C, g.M, g.N, g.K, float32Output: true, beta: 1f, lda: g.Lda, ldb: g.Ldb);
        });
        foreach (var b in buffers) b.Dispose();
        yield return new JsonObject
        {
            ["kind"] = "lora_gradient_layer", ["shape"] = shape, ["tokens"] = tokens, ["lora_grad_ms"] = Math.Round(oursLayer, 4),
            ["cublaslt_ms"] = Math.Round(blasLayer, 4), ["speedup"] = Math.Round(blasLayer / oursLayer, 3), ["device"] = device.Name,
        };
    }
}

