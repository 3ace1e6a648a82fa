namespace FineTune.Core.Config;

/// <summary>
/// The resolved value of every <c>lora.yaml</c> key (defaults included), under the same names, for
/// manifests and reports: a reader sees exactly the hyper-parameters a model was trained with.
/// </summary>
public static class TrainingConfigDescription
{
    private static readonly (string Key, Func<TrainingConfig, object> Get)[] Getters =
    [
        ("r", c => c.R),
        ("lora_alpha", c => c.LoraAlpha),
        ("lora_dropout", c => c.LoraDropout),
        ("use_rslora", c => c.UseRsLora),
        ("target_modules", c => c.TargetModules),
        ("learning_rate", c => c.LearningRate),
        ("lr_scheduler_type", c => c.LrSchedulerType),
        ("warmup_steps", c => c.WarmupSteps),
        ("warmup_ratio", c => c.WarmupRatio),
        ("weight_decay", c => c.WeightDecay),
        ("adam_beta1", c => c.AdamBeta1),
        ("adam_beta2", c => c.AdamBeta2),
        ("adam_epsilon", c => c.AdamEpsilon),
        ("max_grad_norm", c => c.MaxGradNorm),
        ("per_device_train_batch_size", c => c.PerDeviceTrainBatchSize),
        ("gradient_accumulation_steps", c => c.GradientAccumulationSteps),
        ("max_steps", c => c.MaxSteps),
        ("num_train_epochs", c => c.NumTrainEpochs),
        ("max_seq_length", c => c.MaxSeqLength),
        ("seed", c => c.Seed),
        ("gradient_checkpointing", c => c.GradientCheckpointing && c.OffloadCheckpoints ? "offload" : c.GradientCheckpointing),
        ("gpu_memory_limit", c => c.GpuMemoryLimit is { } b ? (b / (double)(1L << 30)).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture) + "GiB" : "none"),
        ("eval_steps", c => c.EvalSteps),
        ("save_steps", c => c.SaveSteps),
        ("logging_steps", c => c.LoggingSteps),
        ("train_on_responses_only", c => c.TrainOnResponsesOnly),
        ("validation_split", c => c.ValidationSplit),
        ("trainer", c => c.Trainer),
        ("beta", c => c.Beta),
        ("loss_type", c => c.LossType),
        ("label_smoothing", c => c.LabelSmoothing),
        ("max_prompt_length", c => c.MaxPromptLength),
        ("max_length", c => c.MaxLength),
        ("truncation_mode", c => c.TruncationMode),
        ("load_in_4bit", c => c.LoadIn4Bit),
        ("bnb_4bit_quant_type", c => c.Bnb4BitQuantType),
        ("bnb_4bit_use_double_quant", c => c.Bnb4BitUseDoubleQuant),
        ("bnb_4bit_compute_dtype", c => c.Bnb4BitComputeDtype),
    ];

    /// <summary>Every key with its value, in the order lora.yaml documents them.</summary>
    public static IReadOnlyList<KeyValuePair<string, object>> Describe(TrainingConfig config) =>
        [.. Getters.Select(g => new KeyValuePair<string, object>(g.Key, g.Get(config)))];
}
