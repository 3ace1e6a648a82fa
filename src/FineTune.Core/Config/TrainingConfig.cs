namespace FineTune.Core.Config;

/// <summary>
/// The contents of <c>lora.yaml</c>. Keys use the names people already know from PEFT, TRL and
/// Unsloth so a notebook's settings can be pasted in; defaults follow the Unsloth Llama-3 tutorial.
/// </summary>
public sealed record TrainingConfig
{
    /// <summary>LoRA rank (<c>r</c>).</summary>
    public int R { get; init; } = 16;
    /// <summary><c>lora_alpha</c>; the adapter's output is scaled by alpha/r (alpha/sqrt(r) with rsLoRA).</summary>
    public double LoraAlpha { get; init; } = 16;
    /// <summary><c>lora_dropout</c>, applied to the adapter's input during training.</summary>
    public double LoraDropout { get; init; }
    /// <summary><c>use_rslora</c>: rank-stabilised scaling alpha/sqrt(r).</summary>
    public bool UseRsLora { get; init; }
    /// <summary><c>target_modules</c>: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = AllProjections;
    /// <summary><c>learning_rate</c>.</summary>
    public double LearningRate { get; init; } = 2e-4;
    /// <summary><c>lr_scheduler_type</c>: linear, cosine or constant.</summary>
    public string LrSchedulerType { get; init; } = "linear";
    /// <summary><c>warmup_steps</c>; takes precedence over <see cref="WarmupRatio"/> when above zero.</summary>
    public int WarmupSteps { get; init; } = 5;
    /// <summary><c>warmup_ratio</c> of the total optimizer steps.</summary>
    public double WarmupRatio { get; init; }
    /// <summary><c>weight_decay</c> (AdamW, decoupled).</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary><c>adam_beta1</c>.</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    /// <summary><c>adam_beta2</c>.</summary>
    public double AdamBeta2 { get; init; } = 0.999;
    /// <summary><c>adam_epsilon</c>.</summary>
    public double AdamEpsilon { get; init; } = 1e-8;
    /// <summary><c>max_grad_norm</c>; 0 disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary><c>per_device_train_batch_size</c>.</summary>
    public int PerDeviceTrainBatchSize { get; init; } = 2;
    /// <summary><c>gradient_accumulation_steps</c>.</summary>
    public int GradientAccumulationSteps { get; init; } = 4;
    /// <summary><c>max_steps</c>; when above zero it wins over <see cref="NumTrainEpochs"/>.</summary>
    public int MaxSteps { get; init; } = 60;
    /// <summary><c>num_train_epochs</c>, used when <see cref="MaxSteps"/> is 0.</summary>
    public double NumTrainEpochs { get; init; } = 1;
    /// <summary><c>max_seq_length</c>: longer examples are truncated with a warning.</summary>
    public int MaxSeqLength { get; init; } = 2048;
    /// <summary><c>seed</c> for initialisation, shuffling, dropout and splits.</summary>
    public int Seed { get; init; } = 3407;
    /// <summary><c>gradient_checkpointing</c>: recompute activations per block in the backward pass.</summary>
    public bool GradientCheckpointing { get; init; } = true;
    /// <summary>
    /// <c>gradient_checkpointing: offload</c>: checkpointing, and on the GPU the residual checkpoints and an
    /// untied input embedding in pinned host memory (what load_in_4bit always does), for the lowest GPU
    /// memory a bf16 base allows. Changes where tensors live, not what is computed.
    /// </summary>
    public bool OffloadCheckpoints { get; init; }
    /// <summary>
    /// <c>gpu_memory_limit</c> in bytes (null: the GPU's free memory): the most GPU memory a training run plans for. A plan above it
    /// stops with FT3107 and a setting that fits; with gradient checkpointing, layers that fit under it keep their activations instead
    /// of recomputing them (the same training bit for bit, faster). The CPU engine does not read it.
    /// </summary>
    public long? GpuMemoryLimit { get; init; }
    /// <summary><c>eval_steps</c>: validation loss every N optimizer steps (0: only at the end).</summary>
    public int EvalSteps { get; init; }
    /// <summary><c>save_steps</c>: checkpoint every N optimizer steps (0: only at the end or on cancellation).</summary>
    public int SaveSteps { get; init; } = 20;
    /// <summary><c>logging_steps</c>: a progress line every N optimizer steps.</summary>
    public int LoggingSteps { get; init; } = 1;
    /// <summary><c>train_on_responses_only</c>: loss on assistant replies only (default) or on every token.</summary>
    public bool TrainOnResponsesOnly { get; init; } = true;
    /// <summary><c>validation_split</c>: fraction of training examples held out for validation (seeded).</summary>
    public double ValidationSplit { get; init; }
    /// <summary><c>load_in_4bit</c> (QLoRA): the base projections are held as 4-bit codes and dequantized for each product.</summary>
    public bool LoadIn4Bit { get; init; }
    /// <summary><c>bnb_4bit_quant_type</c>: <c>nf4</c> (NormalFloat4, QLoRA's choice) or <c>fp4</c>.</summary>
    public string Bnb4BitQuantType { get; init; } = "nf4";
    /// <summary><c>bnb_4bit_use_double_quant</c>: the per-block absmax values quantized to 8 bits in turn (blocks of 256).</summary>
    public bool Bnb4BitUseDoubleQuant { get; init; } = true;
    /// <summary><c>bnb_4bit_compute_dtype</c>: the type weights are dequantized to for the products; only <c>bfloat16</c>.</summary>
    public string Bnb4BitComputeDtype { get; init; } = "bfloat16";

    /// <summary><c>trainer</c>: <c>sft</c> (supervised), <c>dpo</c> or <c>orpo</c> (preference pairs), as TRL's trainers.</summary>
    public string Trainer { get; init; } = "sft";
    /// <summary><c>beta</c>: DPO's KL strength (TRL DPOConfig.beta), or ORPO's weight λ of the odds-ratio term (ORPOConfig.beta).</summary>
    public double Beta { get; init; } = 0.1;
    /// <summary><c>loss_type</c> of DPO: <c>sigmoid</c> (the paper's), <c>ipo</c> or <c>hinge</c>.</summary>
    public string LossType { get; init; } = "sigmoid";
    /// <summary><c>label_smoothing</c> of the sigmoid DPO loss (conservative DPO): the assumed rate of flipped preference labels.</summary>
    public double LabelSmoothing { get; init; }
    /// <summary><c>max_prompt_length</c> of preference data in tokens (TRL's default 512).</summary>
    public int MaxPromptLength { get; init; } = 512;
    /// <summary><c>max_length</c> of a preference prompt plus completion in tokens (TRL's default 1024).</summary>
    public int MaxLength { get; init; } = 1024;
    /// <summary><c>truncation_mode</c> of a too-long preference prompt: <c>keep_end</c> (TRL's default) or <c>keep_start</c>.</summary>
    public string TruncationMode { get; init; } = "keep_end";

    /// <summary>True for <c>trainer: dpo</c> or <c>orpo</c>.</summary>
    public bool IsPreference => Trainer is "dpo" or "orpo";

    /// <summary>The seven projections of a Llama block, in PEFT's usual order.</summary>
    public static readonly IReadOnlyList<string> AllProjections =
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
}
