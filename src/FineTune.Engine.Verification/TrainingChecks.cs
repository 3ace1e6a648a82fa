using System.Text.Json.Nodes;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Progress;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Training;
using FineTune.Engine.Weights;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Backends.Cuda.Verification;

/// <summary>
/// The training kernels against CPU loops, and end-to-end checks of CUDA training through the shared <see cref="Trainer"/>, run by the GPU xunit
/// tests and by bench/train-cuda on a GPU machine: a 20-step run of a tiny model matches the CPU
/// run's per-step losses, two GPU runs write byte-identical adapters, and a run interrupted and
/// resumed from its checkpoint ends byte-identical to an uninterrupted one.
/// </summary>
/// <remarks>
/// The loss tolerance: the tiny models' weights are bf16 values (stored as BF16, so both backends
/// start from the same numbers), so the GPU/CPU gap comes from bf16 activations alone. Each bf16
/// rounding is a relative 2⁻⁹ ≈ 0.2%; the kernels' outputs sit at 1.6e-3 against float64 and a
/// 2-layer model chains ~15 such roundings per token before the loss, whose mean over a few hundred
/// target tokens averages much of it out. 20 optimizer steps then move both runs along slightly
/// different gradients. 1% relative per step leaves ~3x margin over that estimate while still
/// failing on any real bug (a wrong mask, scale or transposition moves the loss by tens of percent).
/// </remarks>
public sealed partial class TrainingChecks : IDisposable
{
    /// <summary>Largest relative difference allowed between a GPU step's loss and the CPU step's.</summary>
    public const double LossTolerance = 1e-2;

    private const int Steps = 20;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "finetune-train-checks-" + Guid.NewGuid().ToString("N")[..8]);

    private TrainingChecks(CudaTrainingDevice gpu) => Gpu = gpu;

    /// <summary>Opens GPU 0 (FT31xx when something is missing).</summary>
    public static TrainingChecks Open() => new(CudaTrainingDevice.Open());

    /// <summary>The device the checks train on.</summary>
    public CudaTrainingDevice Gpu { get; }

    /// <summary>Every check, by name.</summary>
    public IReadOnlyDictionary<string, Func<KernelCheckResult>> All => new Dictionary<string, Func<KernelCheckResult>>
    {
        ["kernel_add_bias"] = () => TrainingKernelChecks.AddBias(Gpu.Context, Environment.TickCount),
        ["kernel_dropout"] = () => TrainingKernelChecks.Dropout(Gpu.Context, Environment.TickCount),
        ["kernel_copy_columns"] = () => TrainingKernelChecks.CopyColumns(Gpu.Context, Environment.TickCount),
        ["train_parity_llama"] = () => Parity("train_parity_llama", TinyConfig("llama"), checkpointing: false, dropout: 0.1),
        ["train_parity_llama_checkpointing"] = () => Parity("train_parity_llama_checkpointing", TinyConfig("llama"), checkpointing: true, dropout: 0),
        ["train_parity_qwen2_bias"] = () => Parity("train_parity_qwen2_bias", TinyConfig("qwen2") with { AttentionBias = true }, checkpointing: true, dropout: 0.05),
        ["train_parity_qwen3_qk_norm"] = () => Parity("train_parity_qwen3_qk_norm", TinyConfig("qwen3") with { QkNorm = true, TieWordEmbeddings = true }, checkpointing: false, dropout: 0),
        // head_dim 64, the size the Hopper (wgmma) attention kernels take on compute capability 9.0.
        ["train_parity_llama_head_dim_64"] = () => Parity("train_parity_llama_head_dim_64", TinyConfig("llama") with { HiddenSize = 128, IntermediateSize = 192, NumHeads = 2, NumKvHeads = 1, HeadDim = 64 }, checkpointing: false, dropout: 0.1),
        // head_dim 128 with q/k norms (Qwen3's shape), which the Hopper kernels also take.
        ["train_parity_qwen3_head_dim_128"] = () => Parity("train_parity_qwen3_head_dim_128", TinyConfig("qwen3") with { HiddenSize = 256, IntermediateSize = 384, NumHeads = 2, NumKvHeads = 1, HeadDim = 128, QkNorm = true }, checkpointing: false, dropout: 0.1),
        ["train_parity_gemma3"] = () => Parity("train_parity_gemma3", TinyGemmaConfig(), checkpointing: false, dropout: 0.1),
        ["train_parity_gemma3_checkpointing"] = () => Parity("train_parity_gemma3_checkpointing", TinyGemmaConfig(), checkpointing: true, dropout: 0),
        ["train_resume"] = () => Resume("train_resume", TinyConfig("llama")),
        ["train_resume_gemma3"] = () => Resume("train_resume_gemma3", TinyGemmaConfig()),
        ["memory_plan"] = () => MemoryPlan("memory_plan", TinyConfig("llama") with { HiddenSize = 512, IntermediateSize = 1536, NumHeads = 8, NumKvHeads = 2, HeadDim = 64, NumLayers = 4, VocabSize = 32000 }),
        // Selective checkpointing: one shared layer set plus each layer's attention output, lse and x1.
        ["memory_plan_checkpointing"] = () => MemoryPlan("memory_plan_checkpointing", TinyConfig("llama") with { HiddenSize = 512, IntermediateSize = 1536, NumHeads = 8, NumKvHeads = 2, HeadDim = 64, NumLayers = 4, VocabSize = 32000 }, checkpointing: true),
        ["memory_plan_whole_layers"] = () => MemoryPlan("memory_plan_whole_layers", TinyConfig("llama") with { HiddenSize = 512, IntermediateSize = 1536, NumHeads = 8, NumKvHeads = 2, HeadDim = 64, NumLayers = 4, VocabSize = 32000 }, checkpointing: true, wholeLayers: 2),
        // Widths whose 2048-token buffers are whole 2 MiB pool blocks, as the llama check's: at hidden 640 the pool's rounding
        // alone put the peak 15.7% over the plan (H200, 2026-12-01; at Gemma 3 1B's real shape, 4 x 2048 tokens, +0.6%).
        ["memory_plan_gemma3"] = () => MemoryPlan("memory_plan_gemma3", TinyGemmaConfig() with { HiddenSize = 1024, IntermediateSize = 4096, NumHeads = 4, NumKvHeads = 1, NumLayers = 4, VocabSize = 32000, SlidingLayers = [true, true, true, false] }),
        ["weights_stream_f32"] = () => StreamedWeights(TensorDType.F32),
        ["weights_stream_f16"] = () => StreamedWeights(TensorDType.F16),
        ["weights_stream_bf16"] = () => StreamedWeights(TensorDType.BF16),
        ["kernel_fourbit_nf4_dq"] = () => FourBitChecks.Kernels(Gpu.Context, new FourBitSettings(FourBitType.Nf4, true), Environment.TickCount),
        ["kernel_fourbit_nf4"] = () => FourBitChecks.Kernels(Gpu.Context, new FourBitSettings(FourBitType.Nf4, false), Environment.TickCount),
        ["kernel_fourbit_fp4_dq"] = () => FourBitChecks.Kernels(Gpu.Context, new FourBitSettings(FourBitType.Fp4, true), Environment.TickCount),
        ["kernel_fourbit_gemm_skinny_nf4_dq"] = () => FourBitChecks.SkinnyProduct(Gpu.Context, new FourBitSettings(FourBitType.Nf4, true), Environment.TickCount),
        ["kernel_fourbit_gemm_skinny_fp4"] = () => FourBitChecks.SkinnyProduct(Gpu.Context, new FourBitSettings(FourBitType.Fp4, false), Environment.TickCount),
        ["weights_stream_4bit"] = () => FourBitChecks.StreamedWeights(Gpu.Context, Path.Combine(_root, "weights_stream_4bit"), new FourBitSettings(FourBitType.Nf4, true)),
        ["train_parity_llama_4bit"] = () => Parity("train_parity_llama_4bit", TinyConfig("llama"), checkpointing: true, dropout: 0.1, fourBit: true),
        ["train_4bit_tracks_bf16"] = () => FourBitTracksBf16(Gpu, Path.Combine(_root, "train_4bit_tracks_bf16")),
        ["train_parity_dpo_sigmoid"] = () => PreferenceParity("train_parity_dpo_sigmoid", "dpo", "sigmoid", startAdapter: false, checkpointing: false),
        ["train_parity_dpo_ipo_start_adapter"] = () => PreferenceParity("train_parity_dpo_ipo_start_adapter", "dpo", "ipo", startAdapter: true, checkpointing: true),
        ["train_parity_dpo_hinge_4bit"] = () => PreferenceParity("train_parity_dpo_hinge_4bit", "dpo", "hinge", startAdapter: false, checkpointing: true, fourBit: true),
        ["train_parity_orpo"] = () => PreferenceParity("train_parity_orpo", "orpo", "sigmoid", startAdapter: false, checkpointing: false),
        ["memory_plan_4bit"] = () => MemoryPlan("memory_plan_4bit", TinyConfig("llama") with { HiddenSize = 512, IntermediateSize = 1536, NumHeads = 8, NumKvHeads = 2, HeadDim = 64, NumLayers = 4, VocabSize = 32000 }, fourBit: true),
        // Six layers: checkpoints 0-3 go to host memory and come back (the last two never leave the GPU).
        ["train_parity_llama_4bit_offload"] = () => Parity("train_parity_llama_4bit_offload", TinyConfig("llama") with { NumLayers = 6 }, checkpointing: true, dropout: 0.1, fourBit: true),
        // Sandwich norms rewrite a recomputed layer's output: with offloaded checkpoints it goes to its own slot.
        ["train_parity_gemma3_4bit"] = () => Parity("train_parity_gemma3_4bit", TinyGemmaConfig() with { NumLayers = 4, SlidingLayers = [true, false, true, false] }, checkpointing: true, dropout: 0, fourBit: true),
        // gradient_checkpointing: offload on a bf16 base: checkpoints 0-3 and the untied input embedding in host memory.
        ["train_parity_llama_offload"] = () => Parity("train_parity_llama_offload", TinyConfig("llama") with { NumLayers = 6, TieWordEmbeddings = false }, checkpointing: true, dropout: 0.1, offload: true),
        ["memory_plan_offload"] = () => MemoryPlan("memory_plan_offload", TinyConfig("llama") with { HiddenSize = 512, IntermediateSize = 1536, NumHeads = 8, NumKvHeads = 2, HeadDim = 64, NumLayers = 8, VocabSize = 32000, TieWordEmbeddings = false }, checkpointing: true, offload: true),
        // Variable-length batches: attention as one launch over the batch and as one launch per run give the same adapter, byte for byte.
        ["train_single_attention_launch_equals_per_run"] = () => SingleLaunchEqualsPerRun("train_single_attention_launch_equals_per_run", TinyConfig("llama")),
        ["train_single_attention_launch_equals_per_run_gemma3"] = () => SingleLaunchEqualsPerRun("train_single_attention_launch_equals_per_run_gemma3", TinyGemmaConfig() with { NumLayers = 4, SlidingLayers = [true, false, true, false] }),
        ["train_graph_replay_equals_eager"] = () => GraphReplayEqualsEager("train_graph_replay_equals_eager", TinyConfig("llama"), checkpointing: false),
        ["train_graph_replay_equals_eager_checkpointing"] = () => GraphReplayEqualsEager("train_graph_replay_equals_eager_checkpointing", TinyConfig("llama"), checkpointing: true),
        ["train_graph_replay_equals_eager_gemma3_4bit"] = () => GraphReplayEqualsEager("train_graph_replay_equals_eager_gemma3_4bit", TinyGemmaConfig() with { NumLayers = 4, SlidingLayers = [true, false, true, false] }, checkpointing: false, fourBit: true),
        // q/k/v's and gate/up's LoRA up-projections along K (padded and not), gate/up's and q/k/v's input gradients as one
        // product, against each projection's own products.
        ["train_spare_columns_match_separate_products"] = () => SpareColumnsMatchSeparateProducts("train_spare_columns_match_separate_products", TinyConfig("llama")),
        ["memory_plan_4bit_offload"] = () => MemoryPlan("memory_plan_4bit_offload", TinyConfig("llama") with { HiddenSize = 512, IntermediateSize = 1536, NumHeads = 8, NumKvHeads = 2, HeadDim = 64, NumLayers = 8, VocabSize = 32000 }, fourBit: true, checkpointing: true),
        ["train_shared_glu_output_equals_kept"] = () => SharedGluOutputEqualsKept("train_shared_glu_output_equals_kept", TinyConfig("llama"), dropout: 0),
        ["train_shared_glu_output_equals_kept_dropout_setting"] = () => SharedGluOutputEqualsKept("train_shared_glu_output_equals_kept_dropout_setting", TinyConfig("llama"), dropout: 0.1),
        ["train_shared_glu_output_equals_kept_gemma3"] = () => SharedGluOutputEqualsKept("train_shared_glu_output_equals_kept_gemma3", TinyGemmaConfig(), dropout: 0),
        // Selective checkpointing keeping q, k, v against recomputing them: the same bytes.
        ["train_kept_qkv_equals_recomputed"] = () => KeptQkvEqualsRecomputed("train_kept_qkv_equals_recomputed", TinyConfig("llama"), dropout: 0),
        ["train_kept_qkv_equals_recomputed_dropout"] = () => KeptQkvEqualsRecomputed("train_kept_qkv_equals_recomputed_dropout", TinyConfig("llama"), dropout: 0.1),
        ["train_kept_qkv_equals_recomputed_gemma3"] = () => KeptQkvEqualsRecomputed("train_kept_qkv_equals_recomputed_gemma3", TinyGemmaConfig(), dropout: 0),
        // The recompute leaving h to the GLU backward kernel against running the GLU forward pass: the same bytes.
        ["train_recompute_skipping_glu_equals_running_it"] = () => SkippedGluEqualsRecomputed("train_recompute_skipping_glu_equals_running_it", TinyConfig("llama"), dropout: 0),
        ["train_recompute_skipping_glu_equals_running_it_dropout"] = () => SkippedGluEqualsRecomputed("train_recompute_skipping_glu_equals_running_it_dropout", TinyConfig("llama"), dropout: 0.1),
        // Checkpointed layers keeping o_proj's and down_proj's LoRA hidden values against rebuilding them: the same bytes.
        ["train_kept_lora_hiddens_equal_recomputed"] = () => KeptHiddensEqualRecomputed("train_kept_lora_hiddens_equal_recomputed", TinyConfig("llama"), dropout: 0),
        ["train_kept_lora_hiddens_equal_recomputed_dropout"] = () => KeptHiddensEqualRecomputed("train_kept_lora_hiddens_equal_recomputed_dropout", TinyConfig("llama"), dropout: 0.1),
        ["train_kept_lora_hiddens_equal_recomputed_gemma3"] = () => KeptHiddensEqualRecomputed("train_kept_lora_hiddens_equal_recomputed_gemma3", TinyGemmaConfig(), dropout: 0),
        ["train_whole_layers_equal_recomputed"] = () => WholeLayersEqualRecomputed("train_whole_layers_equal_recomputed", TinyConfig("llama") with { NumLayers = 4 }, dropout: 0),
        ["train_whole_layers_equal_recomputed_dropout"] = () => WholeLayersEqualRecomputed("train_whole_layers_equal_recomputed_dropout", TinyConfig("llama") with { NumLayers = 4 }, dropout: 0.1),
        ["train_whole_layers_equal_recomputed_gemma3"] = () => WholeLayersEqualRecomputed("train_whole_layers_equal_recomputed_gemma3", TinyGemmaConfig() with { NumLayers = 4, SlidingLayers = [true, false, true, false] }, dropout: 0),
        ["train_varlen_bucketed_plans_rerun_identical"] = () => VarlenBucketedPlansRerunIdentical("train_varlen_bucketed_plans_rerun_identical", TinyConfig("llama")),
    };

    /// <summary>Runs one check, turning an exception into a failed result.</summary>
    public KernelCheckResult Run(string name)
    {
        try
        {
            return All[name]();
        }
        catch (Exception e) when (e is not KeyNotFoundException)
        {
            return new KernelCheckResult(name, 0, [], false, e.GetType().Name + ": " + e.Message);
        }
    }

    /// <summary>A small Llama-family shape the GPU kernels take (head_dim 16, widths multiples of 8).</summary>
    public static ModelConfig TinyConfig(string type) => new()
    {
        ModelType = type, VocabSize = 160, HiddenSize = 64, IntermediateSize = 96, NumLayers = 2,
        NumHeads = 4, NumKvHeads = 2, HeadDim = 16, RmsNormEps = 1e-5, RopeTheta = 10000,
    };

    /// <summary>
    /// A tiny Gemma 3 (gemma3_text) the GPU kernels take at Gemma's own head_dim 256: scaled
    /// embeddings, (1 + w) norms, q/k and sandwich norms, GeGLU, query_pre_attn_scalar, a 24-token
    /// sliding-window layer with its own RoPE base and a global layer with linear RoPE scaling, tied head.
    /// </summary>
    public static ModelConfig TinyGemmaConfig() => TinyConfig("gemma3_text") with
    {
        NumHeads = 2, NumKvHeads = 1, HeadDim = 256, RmsNormEps = 1e-6, RopeTheta = 1_000_000, RopeLocalTheta = 10_000, LinearRopeFactor = 8,
        TieWordEmbeddings = true, QkNorm = true, EmbeddingScale = 8, NormWeightOffset = true, SandwichNorms = true,
        Activation = GateActivation.GeluTanh, QueryPreAttnScalar = 256, SlidingWindow = 24, SlidingLayers = [true, false],
    };

    /// <remarks>
    /// With <paramref name="fourBit"/> both runs train over NF4 projections (double quantization). The
    /// GPU quantizes them on load and dequantizes them per product; <c>weights_stream_4bit</c> shows
    /// those bf16 values are the CPU's bit for bit, so the same tolerance holds as for bf16 weights.
    /// </remarks>
    private KernelCheckResult Parity(string name, ModelConfig model, bool checkpointing, double dropout, bool fourBit = false, bool offload = false)
    {
        var dir = Path.Combine(_root, name);
        var modelDir = WriteModel(Path.Combine(dir, "model"), model, seed: 11);
        var config = Config(checkpointing, dropout) with { LoadIn4Bit = fourBit, OffloadCheckpoints = offload };
        var cpu = Train(modelDir, Path.Combine(dir, "cpu"), config, device: null);
        var gpu1 = Train(modelDir, Path.Combine(dir, "gpu1"), config, Gpu);
        var gpu2 = Train(modelDir, Path.Combine(dir, "gpu2"), config, Gpu);
        var worst = cpu.Zip(gpu1, (c, g) => Math.Abs(g - c) / Math.Abs(c)).Max();
        var identical = File.ReadAllBytes(Path.Combine(dir, "gpu1", "adapter_model.safetensors"))
            .AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "gpu2", "adapter_model.safetensors")));
        var losses = string.Join(" ", cpu.Zip(gpu1, (c, g) => FormattableString.Invariant($"{c:0.0000}/{g:0.0000}")));
        return new KernelCheckResult(name, 11, [new OutputError($"per-step loss over {Steps} steps (cpu/gpu: {losses})", worst, LossTolerance)], identical,
            cpu.Count == Steps && gpu1.Count == Steps ? null : "a run did not log every step");
    }

    /// <summary>Largest gap allowed between a GPU step's preference loss and the CPU step's, relative to the run's largest loss.</summary>
    public const double PreferenceLossTolerance = 2e-2;

    /// <summary>The summed completion log-probabilities, compared per step as SFT's loss is (<see cref="LossTolerance"/> relative).</summary>
    private static readonly string[] LogpMetrics = ["logps/chosen", "logps/rejected"];

    /// <summary>TRL's reward metrics, compared per step relative to each one's largest magnitude over the run (<see cref="LossTolerance"/>).</summary>
    private static readonly string[] RewardMetrics = ["rewards/chosen", "rewards/rejected", "rewards/margins"];

    /// <summary>
    /// DPO (<paramref name="lossType"/>) or ORPO, 20 steps on the tiny llama, GPU against CPU, and two GPU
    /// runs writing byte-identical adapters and reference log-probabilities. With
    /// <paramref name="startAdapter"/> both start from (and are referenced to) a 5-step CPU SFT adapter,
    /// the SFT-then-DPO build's path; otherwise the reference is the model with the adapter switched off.
    /// </summary>
    /// <remarks>
    /// What the bf16 activations perturb is each token's log-probability, as in SFT, so the summed
    /// completion log-probabilities (<c>logps/*</c>) get SFT's per-step 1% relative. Rewards and losses
    /// are functions of their differences: they start at exactly zero (the first policy is the
    /// reference) or at a constant (log 2, IPO's 1/(2β)², hinge's 1) and DPO drives the loss towards
    /// zero, so a per-step relative error measures how small the value has become, not the engine: a
    /// sigmoid loss of 0.0025 moves by 2% when the margin moves by 0.2 nats. They are
    /// compared relative to their largest magnitude over the run instead. The loss gets 2%: its error
    /// is its slope times the margin's error, and hinge's slope β is twice sigmoid's at the start; the
    /// H200 measured 1.1% (hinge, the step the margin first moves: 0.9421 vs 0.9534), 0.3% for sigmoid
    /// and IPO. A wrong sign, scale or row moves these by tens of percent.
    /// </remarks>
    private KernelCheckResult PreferenceParity(string name, string trainer, string lossType, bool startAdapter, bool checkpointing, bool fourBit = false)
    {
        var dir = Path.Combine(_root, name);
        var model = TinyConfig("llama");
        var modelDir = WriteModel(Path.Combine(dir, "model"), model, seed: 14);
        string? start = null;
        if (startAdapter)
        {
            start = Path.Combine(dir, "sft");
            Train(modelDir, start, Config(checkpointing: false, dropout: 0) with { MaxSteps = 5 }, device: null);
        }
        // The hinge's gradient jumps from -beta to 0 when a pair's reward margin passes 1: at beta 0.1 every
        // pair passed it by step 6 (margins of 10 nats), after which a last-bit difference between the engines
        // decides whether a pair still pulls with a full -beta gradient, and the comparison measured that
        // coin flip rather than the engines (2026-12-02: rewards 12% apart after loss 0 on both). At 0.001 the
        // hinge is at 1,000 nats, far beyond the margins 20 steps reach (about 40 at beta 0.1), so every pair
        // keeps its -beta gradient and the engines are compared on the same smooth path.
        var beta = lossType == "hinge" ? 0.001 : 0.1;
        var config = Config(checkpointing, dropout: 0) with { Trainer = trainer, LossType = lossType, Beta = beta, LoadIn4Bit = fourBit, EvalSteps = 0 };
        var cpu = TrainPreference(modelDir, Path.Combine(dir, "cpu"), config, start, device: null);
        var gpu1 = TrainPreference(modelDir, Path.Combine(dir, "gpu1"), config, start, Gpu);
        var gpu2 = TrainPreference(modelDir, Path.Combine(dir, "gpu2"), config, start, Gpu);
        static double V(JsonObject o, string key) => (double)o[key]!;
        string PerStep(string key) => string.Join(" ", cpu.Zip(gpu1, (c, g) => FormattableString.Invariant($"{V(c, key):0.0000}/{V(g, key):0.0000}")));
        double ScaledGap(string key) => cpu.Zip(gpu1, (c, g) => Math.Abs(V(g, key) - V(c, key))).Max() / Math.Max(cpu.Max(c => Math.Abs(V(c, key))), 1e-12);
        var errors = new List<OutputError>
        {
            new($"per-step {trainer} {lossType} loss relative to the run's largest (cpu/gpu: {PerStep("loss")})", ScaledGap("loss"), PreferenceLossTolerance),
        };
        foreach (var metric in LogpMetrics)
            errors.Add(new OutputError($"per-step {metric} (cpu/gpu: {PerStep(metric)})",
                cpu.Zip(gpu1, (c, g) => Math.Abs(V(g, metric) - V(c, metric)) / Math.Abs(V(c, metric))).Max(), LossTolerance));
        foreach (var metric in RewardMetrics)
            errors.Add(new OutputError(FormattableString.Invariant($"per-step {metric} relative to its largest magnitude (last step cpu/gpu {V(cpu[^1], metric):0.0000}/{V(gpu1[^1], metric):0.0000})"),
                ScaledGap(metric), LossTolerance));
        bool Same(string file) => File.ReadAllBytes(Path.Combine(dir, "gpu1", file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "gpu2", file)));
        var identical = Same("adapter_model.safetensors") && (trainer != "dpo" || Same(FineTune.Engine.Training.Preference.ReferenceFile.Name));
        return new KernelCheckResult(name, 14, errors, identical, cpu.Count == Steps && gpu1.Count == Steps ? null : "a run did not log every step");
    }

    /// <summary>Pairs sharing a random prompt (8..31 tokens): the chosen completion from the lower half of the vocabulary, the rejected from the upper, 4..27 tokens each.</summary>
    public static List<TokenizedPair> Pairs(int count, int vocab, ulong seed)
    {
        var rng = new DeterministicRandom(seed);
        var result = new List<TokenizedPair>();
        TokenizedExample Sequence(int[] prompt, int offset)
        {
            var completion = Enumerable.Range(0, 4 + rng.NextInt(24)).Select(_ => offset + rng.NextInt(vocab / 2)).ToArray();
            int[] ids = [.. prompt, .. completion];
            return new TokenizedExample(ids, ids.Select((_, i) => i >= prompt.Length).ToArray());
        }
        for (var p = 0; p < count; p++)
        {
            var prompt = Enumerable.Range(0, 8 + rng.NextInt(24)).Select(_ => rng.NextInt(vocab)).ToArray();
            result.Add(new TokenizedPair(Sequence(prompt, 0), Sequence(prompt, vocab / 2)));
        }
        return result;
    }

    /// <summary>The training steps' lines of metrics.jsonl of one preference run (on the CPU when <paramref name="device"/> is null).</summary>
    private static List<JsonObject> TrainPreference(string modelDir, string outDir, TrainingConfig config, string? startAdapter, CudaTrainingDevice? device)
    {
        var vocab = ModelConfig.Load(modelDir).VocabSize;
        new Trainer(new TrainerOptions
        {
            BaseModelDirectory = modelDir,
            Config = config,
            Train = [],
            PreferenceTrain = Pairs(24, vocab, 8),
            PreferenceValidation = Pairs(4, vocab, 9),
            OutDirectory = outDir,
            CheckpointDirectory = outDir + "-ck",
            InitAdapterDirectory = startAdapter,
            Backend = new CpuBackend(),
            Device = device,
        }).Run(null, CancellationToken.None);
        return File.ReadLines(Path.Combine(outDir, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(m => m["loss"] is not null)
            .ToList();
    }

    /// <summary>Largest relative gap allowed between a 4-bit run's per-step loss and the bf16 run's on one device (see <see cref="FourBitTracksBf16"/>).</summary>
    public const double FourBitLossTolerance = 5e-2;

    /// <summary>
    /// A 20-step QLoRA run (NF4, double quantization) of the tiny llama tracks the bf16 run of the same
    /// model on the same device (<paramref name="device"/>; null: the CPU) within
    /// <see cref="FourBitLossTolerance"/>. NF4 moves each weight by up to half a code step (8-16% of
    /// its block's absmax, ~2.4σ for Gaussian blocks of 64, so ~10% relative per weight); through two
    /// layers that shifts the loss by a few percent, which the CPU measures at 1.2% at most for this
    /// model and data (FourBitTrainingTests). 5% leaves room and still fails on a wrong code book,
    /// swapped nibbles or a lost absmax, which move the loss by far more.
    /// </summary>
    public static KernelCheckResult FourBitTracksBf16(CudaTrainingDevice? device, string dir)
    {
        const string name = "train_4bit_tracks_bf16";
        var modelDir = WriteModel(Path.Combine(dir, "model"), TinyConfig("llama"), seed: 15);
        var config = Config(checkpointing: true, dropout: 0);
        var bf16 = Train(modelDir, Path.Combine(dir, "bf16"), config, device);
        var nf4 = Train(modelDir, Path.Combine(dir, "nf4"), config with { LoadIn4Bit = true }, device);
        var worst = bf16.Zip(nf4, (a, b) => Math.Abs(b - a) / Math.Abs(a)).Max();
        var losses = string.Join(" ", bf16.Zip(nf4, (a, b) => FormattableString.Invariant($"{a:0.0000}/{b:0.0000}")));
        string? failure = bf16.Count != Steps || nf4.Count != Steps ? "a run did not log every step"
            : bf16.SequenceEqual(nf4) ? "the 4-bit run's losses equal the bf16 run's: the weights were not quantized"
            : null;
        return new KernelCheckResult(name, 15, [new OutputError($"per-step loss over {Steps} steps (bf16/nf4: {losses})", worst, FourBitLossTolerance)], true, failure);
    }

    private KernelCheckResult Resume(string name, ModelConfig model)
    {
        var dir = Path.Combine(_root, name);
        var modelDir = WriteModel(Path.Combine(dir, "model"), model, seed: 12);
        var config = Config(checkpointing: true, dropout: 0.1) with { SaveSteps = 5 };
        Train(modelDir, Path.Combine(dir, "whole"), config, Gpu);
        using var cancel = new CancellationTokenSource();
        var stopAt = new Progress(p => { if (p.Step == 12) cancel.Cancel(); });
        try
        {
            Train(modelDir, Path.Combine(dir, "resumed"), config, Gpu, stopAt, cancel.Token);
            return new KernelCheckResult(name, 12, [], false, "the run was not interrupted");
        }
        catch (OperationCanceledException)
        {
        }
        if (!File.Exists(Path.Combine(dir, "resumed-ck", "checkpoint", "state.json")))
            return new KernelCheckResult(name, 12, [], false, "the interrupted run left no checkpoint");
        Train(modelDir, Path.Combine(dir, "resumed"), config, Gpu);
        var whole = SafetensorsFile.Open(Path.Combine(dir, "whole", "adapter_model.safetensors"));
        var resumed = SafetensorsFile.Open(Path.Combine(dir, "resumed", "adapter_model.safetensors"));
        double diff = 0, norm = 0;
        foreach (var info in whole.Tensors)
        {
            var a = whole.ReadF32(info.Name);
            var b = resumed.ReadF32(info.Name);
            for (var i = 0; i < a.Length; i++)
            {
                diff += (double)(a[i] - b[i]) * (a[i] - b[i]);
                norm += (double)a[i] * a[i];
            }
        }
        whole.Dispose();
        resumed.Dispose();
        var identical = File.ReadAllBytes(Path.Combine(dir, "whole", "adapter_model.safetensors"))
            .AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir, "resumed", "adapter_model.safetensors")));
        return new KernelCheckResult(name, 12, [new OutputError("adapter after resume at step 12 vs uninterrupted", Math.Sqrt(diff / norm), 0)], identical);
    }

    /// <summary>
    /// The plan is what the run holds: after a training step of a random 4-layer model with a real
    /// vocabulary, what the model added to the pool's peak is at least the plan (less the fixed part
    /// held before the model), so a run the plan admits does not run out of memory later, and at most
    /// 10% above it (the pool rounds blocks up: 512 bytes below 1 MiB, 2 MiB above; measured on an
    /// H100: +4.3% over 154 allocations at this small size, +0.3% at Llama-3.2-1B); and a run far
    /// larger than the GPU stops with FT3107 and a suggestion before allocating.
    /// </summary>
    /// <remarks>With <paramref name="fourBit"/>, the same over NF4 projections quantized on the device: the 4-bit weights and the dequantization buffer are counted.</remarks>
    /// <remarks><paramref name="wholeLayers"/>: a gpu_memory_limit with room for that many checkpointed layers kept whole, which the plan must take.</remarks>
    private KernelCheckResult MemoryPlan(string name, ModelConfig model, bool fourBit = false, bool checkpointing = false, bool offload = false, int wholeLayers = 0)
    {
        var config = Config(checkpointing, dropout: 0) with { PerDeviceTrainBatchSize = 4, R = 16, LoadIn4Bit = fourBit, OffloadCheckpoints = offload };
        var adapter = new LoraAdapter(model, LoraSettings.From(config));
        adapter.Initialize(1);
        if (wholeLayers > 0) config = config with { GpuMemoryLimit = WholeLayersLimit(CudaTrainingDevice.PlanFor(model, adapter, config, 512), wholeLayers) };
        var memory = Gpu.Context.Device.Memory;
        memory.ReleaseCached();
        var before = memory.BytesInUse;
        var allocationsBefore = memory.DriverAllocations + memory.CacheHits;
        memory.ResetPeak();
        long held, planned, allocations;
        string? planFailure = null;
        using (var m = Gpu.CreateRandomModel(model, adapter, config, 512, seed: 2, log: null))
        {
            var rng = new DeterministicRandom(4);
            var batch = PackedBatch.FromExamples(Enumerable.Range(0, 4)
                .Select(_ => new TokenizedExample(Enumerable.Range(0, 512).Select(_ => rng.NextInt(model.VocabSize)).ToArray(), Enumerable.Repeat(true, 512).ToArray())).ToList());
            m.ZeroGradients();
            m.ForwardBackward(batch, 1f / batch.LossRows.Length);
            m.ClipAndStep(m.GradNorm(), 1, 1, 1e-4);
            held = memory.PeakBytesInUse - before;
            // FixedBytes (cuBLASLt's workspace, modules) was held before the model.
            planned = m.Plan.Total - GpuMemoryPlan.FixedBytes;
            if (m.Plan.WholeLayers != wholeLayers) planFailure = $"the plan kept {m.Plan.WholeLayers} layers whole, not the {wholeLayers} gpu_memory_limit had room for";
            allocations = memory.DriverAllocations + memory.CacheHits - allocationsBefore;
        }
        var huge = new TrainingConfig { R = 16, PerDeviceTrainBatchSize = 512, MaxSeqLength = 8192, GradientCheckpointing = false, LoadIn4Bit = fourBit };
        var hugeAdapter = new LoraAdapter(model, LoraSettings.From(huge));
        string? failure = planFailure ?? (held < planned ? $"the model held {held} bytes, less than its plan of {planned}: the plan counts something the model does not allocate" : null);
        try
        {
            Gpu.CreateRandomModel(model, hugeAdapter, huge, 8192, seed: 2, log: null).Dispose();
            failure ??= "a plan larger than the GPU was accepted";
        }
        catch (Core.Diagnostics.FineTuneException e) when (e.Code == CudaErrors.PlanDoesNotFit)
        {
            if (!e.Message.Contains("gradient_checkpointing: true", StringComparison.Ordinal)) failure ??= "FT3107 without a suggestion: " + e.Message;
        }
        return new KernelCheckResult(name, 0,
            [new OutputError($"pool peak above the plan ({held} vs {planned} bytes, {allocations} allocations), relative to the plan", (held - planned) / (double)planned, 0.1)],
            true, failure);
    }

    /// <summary>
    /// Three steps on variable-length batches (several runs of equal padded length each), with attention as
    /// one launch over the batch and as one launch per run: the adapters must be equal byte for byte, since
    /// each block of the single launch computes exactly what the per-run launch computed for its sequence.
    /// </summary>
    private KernelCheckResult SingleLaunchEqualsPerRun(string name, ModelConfig model)
    {
        var config = Config(checkpointing: true, dropout: 0) with { PerDeviceTrainBatchSize = 8 };
        var data = Data(24, model.VocabSize, 9);
        var batches = data.Chunk(8).Select(b => PackedBatch.FromExamples(b.ToList())).ToList();
        var runs = batches.Select(b => PaddedRuns(b.SeqLengths)).ToArray();
        float[] Train(bool single)
        {
            var adapter = new LoraAdapter(model, LoraSettings.From(config));
            adapter.Initialize(1);
            using (var m = Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null))
            {
                m.SingleAttentionLaunch = single;
                for (var i = 0; i < batches.Count; i++)
                {
                    m.ZeroGradients();
                    m.ForwardBackward(batches[i], 1f / batches[i].LossRows.Length);
                    m.ClipAndStep(m.GradNorm(), 1, i + 1, 1e-3);
                }
                m.CopyAdapterTo(adapter);
            }
            return [.. adapter.Tensors.SelectMany(t => t.Value)];
        }
        var one = Train(single: true);
        var perRun = Train(single: false);
        var same = one.AsSpan().SequenceEqual(perRun);
        var moved = one.Zip(perRun, (a, b) => Math.Abs(a - b)).Max();
        return new KernelCheckResult(name, 9,
            [new OutputError($"largest adapter difference, one launch vs one per run ({string.Join(", ", runs)} runs of equal length per batch)", moved, 0)], same,
            runs.All(r => r > 1) ? null : "a batch had a single run of equal lengths: the single launch was not exercised");
    }

    /// <summary>
    /// The LoRA up-projections that ride in the base products along K (q/k/v and gate/up, B in the
    /// weights' spare columns, K padded to a multiple of 64 over zero columns) against each projection's
    /// own products (the fused products off): one step from an adapter whose B is random (a fresh
    /// adapter's B is zero, which would hide a B read from the wrong columns) must give the same loss
    /// and the same gradient of every adapter tensor (read back as AdamW's first moment, 0.1 · g
    /// after one unclipped step), up to bf16 rounding: the separate products round the base output to
    /// bf16 before adding h·Bᵀ. The padded and unpadded K are both compared, and gate/up as one product
    /// each way (their weights in one buffer, [gate | up] rows) as well as two.
    /// </summary>
    private KernelCheckResult SpareColumnsMatchSeparateProducts(string name, ModelConfig model)
    {
        var config = Config(checkpointing: false, dropout: 0);
        var batch = PackedBatch.FromExamples(Data(4, model.VocabSize, 5));
        var rng = new DeterministicRandom(8);
        var start = new LoraAdapter(model, LoraSettings.From(config));
        start.Initialize(1);
        foreach (var t in start.Tensors.Where(t => t.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal)))
            for (var i = 0; i < t.Value.Length; i++) t.Value[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
        // The packed q/k/v gradient must run exactly where it is on, or its variants would compare a layout with itself.
        var switchMissed = 0;
        (double Loss, float[][] Grad) Step(bool fused, bool padded, bool gateUpAsOne = true, bool packQkv = true, bool stackQkvA = true)
        {
            var adapter = new LoraAdapter(model, LoraSettings.From(config));
            for (var i = 0; i < adapter.Tensors.Count; i++) start.Tensors[i].Value.CopyTo(adapter.Tensors[i].Value);
            using var m = Gpu.CreateRandomModel(model, adapter, config, 96, seed: 2, log: null);
            m.FuseLoraProducts = fused;
            m.PadSpareColumnK = padded;
            m.FuseGateUp = gateUpAsOne;
            m.PacksQkvGradient = packQkv;
            m.StacksQkvA = stackQkvA;
            if (m.QkvGradientAsOne != (fused && packQkv)) switchMissed++;
            m.LoadAdapter(adapter);
            m.ZeroGradients();
            var loss = m.ForwardBackward(batch, 1f / batch.LossRows.Length);
            m.ClipAndStep(m.GradNorm(), 1e30, 1, 1e-3);
            m.CopyAdapterTo(adapter);
            return (loss, adapter.Tensors.Select(t => t.M.ToArray()).ToArray());
        }
        var separate = Step(fused: false, padded: false);
        var errors = new List<OutputError>();
        var variants = new[]
        {
            ("padded K", Step(fused: true, padded: true)), ("unpadded K", Step(fused: true, padded: false)),
            ("gate/up as two products", Step(fused: true, padded: true, gateUpAsOne: false)),
            ("q/k/v's input gradient as three products", Step(fused: true, padded: true, packQkv: false)),
            ("q/k/v's g·A after their packed product", Step(fused: true, padded: true, stackQkvA: false)),
        };
        var failed = switchMissed == 0 ? null : $"{switchMissed} of {variants.Length + 1} runs did not run q/k/v's input gradient as one product exactly where it was on";
        foreach (var (label, run) in variants)
        {
            errors.Add(new OutputError($"loss, {label} vs separate products, relative", Math.Abs(run.Loss - separate.Loss) / Math.Abs(separate.Loss), 1e-3));
            // Per tensor, the relative L2 difference, within the kernel checks' bf16 gradient tolerance: one bf16 rounding
            // of each projection output (2⁻⁹) more or less, carried through two layers and back, left the worst tensor
            // 1.4e-2 apart on an H200 (2026-12-02), the loss 1.1e-5; a B read from the wrong columns would move both far more.
            var worst = run.Grad.Zip(separate.Grad, (a, b) => ErrorMetrics.Relative(a, Array.ConvertAll(b, x => (double)x))).Max();
            errors.Add(new OutputError($"adapter gradients, {label} vs separate products, worst tensor's relative L2 difference", worst, KernelChecks.Bf16GradTolerance));
        }
        return new KernelCheckResult(name, 8, errors, true, failed);
    }

    /// <summary>Runs of consecutive sequences with the same length padded to 16 (<c>PaddedBatch</c>'s segments).</summary>
    private static int PaddedRuns(int[] lengths) =>
        lengths.Select(l => (l + 15) / 16).Where((p, i) => i == 0 || p != (lengths[i - 1] + 15) / 16).Count();

    private static TrainingConfig Config(bool checkpointing, double dropout) => new()
    {
        R = 8, LoraAlpha = 16, LoraDropout = dropout, LearningRate = 3e-3, MaxSteps = Steps, WarmupSteps = 2,
        PerDeviceTrainBatchSize = 4, GradientAccumulationSteps = 2, MaxSeqLength = 96, Seed = 7, GradientCheckpointing = checkpointing,
        SaveSteps = 0, EvalSteps = 10, LoggingSteps = 1, WeightDecay = 0.01, MaxGradNorm = 1.0,
    };

    /// <summary>Variable-length sequences (16..80 tokens) whose second part is the target, as in SFT data.</summary>
    public static List<TokenizedExample> Data(int count, int vocab, ulong seed)
    {
        var rng = new DeterministicRandom(seed);
        var result = new List<TokenizedExample>();
        for (var e = 0; e < count; e++)
        {
            var n = 16 + rng.NextInt(65);
            var ids = Enumerable.Range(0, n).Select(_ => rng.NextInt(vocab)).ToArray();
            var prompt = n / 3;
            result.Add(new TokenizedExample(ids, ids.Select((_, i) => i >= prompt).ToArray()));
        }
        return result;
    }

    /// <summary>Per-step training losses of one run (on the CPU when <paramref name="device"/> is null).</summary>
    private static List<double> Train(string modelDir, string outDir, TrainingConfig config, CudaTrainingDevice? device,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        var vocab = ModelConfig.Load(modelDir).VocabSize;
        new Trainer(new TrainerOptions
        {
            BaseModelDirectory = modelDir,
            Config = config,
            Train = Data(40, vocab, 5),
            Validation = Data(6, vocab, 6),
            OutDirectory = outDir,
            CheckpointDirectory = outDir + "-ck",
            Backend = new CpuBackend(),
            Device = device,
        }).Run(progress, cancel);
        return File.ReadLines(Path.Combine(outDir, "metrics.jsonl"))
            .Select(l => JsonNode.Parse(l)!)
            .Where(m => m["loss"] is not null)
            .Select(m => (double)m["loss"]!)
            .ToList();
    }

    /// <summary>
    /// The weights streamed tensor by tensor from <paramref name="dtype"/> safetensors
    /// (<see cref="CudaModelWeights.Stream"/>, what training uses) are byte for byte the float32 copy
    /// converted on the device (<see cref="CudaModelWeights.Upload"/>, the path it replaced), over every
    /// kind of tensor: a qwen3-style model with q/k/v and output biases, q/k norms and an untied head.
    /// F32 and F16 values from a Gaussian have bits below bf16's precision, so rounding is exercised.
    /// </summary>
    private KernelCheckResult StreamedWeights(TensorDType dtype)
    {
        var name = "weights_stream_" + dtype.Name().ToLowerInvariant();
        var model = TinyConfig("qwen3") with { QkNorm = true, AttentionBias = true, OutputBias = true, TieWordEmbeddings = false };
        var dir = WriteModel(Path.Combine(_root, name), model, seed: 13, dtype);
        using var files = ModelWeights.Open(dir);
        using var reference = CudaModelWeights.Upload(Gpu.Context, LlamaWeights.Load(model, files));
        using var streamed = CudaModelWeights.Stream(Gpu.Context, model, files);
        static IEnumerable<Memory.DeviceBuffer> Buffers(CudaModelWeights w) =>
            new[] { w.Embedding!, w.FinalNorm, w.LmHead }.Concat(w.Layers.SelectMany(l => l.All()));
        long bytes = 0, differing = 0;
        var pairs = Buffers(reference).Zip(Buffers(streamed)).ToList();
        foreach (var (a, b) in pairs)
        {
            var x = a.Download<byte>();
            var y = b.Download<byte>();
            bytes += x.Length;
            differing += x.Length == y.Length ? x.Zip(y).Count(p => p.First != p.Second) : x.Length;
        }
        var tensors = LlamaTensorLayout.For(model).Count;
        // Every tensor compared once: the untied head is its own buffer, so buffers = tensors.
        var incomplete = pairs.Count != tensors || bytes != CudaModelWeights.Bytes(model)
            ? $"{pairs.Count} buffers of {bytes} bytes compared, the model has {tensors} tensors of {CudaModelWeights.Bytes(model)} bytes"
            : null;
        return new KernelCheckResult(name, 13,
            [new OutputError($"bytes differing from the float32 upload ({tensors} tensors, {bytes} bytes)", (double)differing / Math.Max(1, bytes), 0)],
            Deterministic: true, incomplete);
    }

    /// <summary>Writes a random model whose weights are stored as <paramref name="dtype"/> (BF16: both backends start from the same values).</summary>
    public static string WriteModel(string dir, ModelConfig c, int seed, TensorDType dtype = TensorDType.BF16)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), c.ToJson());
        var rng = new DeterministicRandom((ulong)seed);
        float[] R(long n, double mean, double std) => Enumerable.Range(0, (int)n).Select(_ => (float)(mean + rng.NextGaussian() * std)).ToArray();
        if (c.NormWeightOffset)
        {
            // Gemma: every tensor of its layout; norms stored as offsets around zero (factors around one),
            // the embedding small since it is scaled by sqrt(hidden_size).
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), LlamaTensorLayout.For(c).Select(x => new TensorToWrite(x.Name, x.Shape, x.Kind switch
            {
                LlamaTensorKind.Linear => R(x.ElementCount, 0, 1 / Math.Sqrt(x.Shape[1])),
                LlamaTensorKind.Embedding => R(x.ElementCount, 0, 0.1),
                LlamaTensorKind.Bias => R(x.ElementCount, 0, 0.1),
                _ => R(x.ElementCount, 0, 0.1),
            }, dtype)).ToList());
            return dir;
        }
        var t = new List<TensorToWrite> { new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], R(c.VocabSize * c.HiddenSize, 0, 0.5), dtype) };
        for (var l = 0; l < c.NumLayers; l++)
        {
            t.Add(new($"model.layers.{l}.input_layernorm.weight", [c.HiddenSize], R(c.HiddenSize, 1, 0.1), dtype));
            t.Add(new($"model.layers.{l}.post_attention_layernorm.weight", [c.HiddenSize], R(c.HiddenSize, 1, 0.1), dtype));
            foreach (var p in Projections.All)
            {
                t.Add(new(LlamaWeights.LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], R(p.OutFeatures(c) * p.InFeatures(c), 0, 1 / Math.Sqrt(p.InFeatures(c))), dtype));
                var bias = p is Projection.Q or Projection.K or Projection.V ? c.AttentionBias : p == Projection.O && c.OutputBias;
                if (bias) t.Add(new(LlamaWeights.LinearName(l, p, "bias"), [p.OutFeatures(c)], R(p.OutFeatures(c), 0, 0.1), dtype));
            }
            if (c.QkNorm)
            {
                t.Add(new($"model.layers.{l}.self_attn.q_norm.weight", [c.HeadDim], R(c.HeadDim, 1, 0.1), dtype));
                t.Add(new($"model.layers.{l}.self_attn.k_norm.weight", [c.HeadDim], R(c.HeadDim, 1, 0.1), dtype));
            }
        }
        t.Add(new("model.norm.weight", [c.HiddenSize], R(c.HiddenSize, 1, 0.1), dtype));
        if (!c.TieWordEmbeddings) t.Add(new("lm_head.weight", [c.VocabSize, c.HiddenSize], R(c.VocabSize * c.HiddenSize, 0, 0.5), dtype));
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t);
        return dir;
    }

    private sealed class Progress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Gpu.Dispose();
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
