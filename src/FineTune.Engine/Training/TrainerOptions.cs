using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Engine.Backends;

namespace FineTune.Engine.Training;

/// <summary>Everything one training run needs.</summary>
public sealed record TrainerOptions
{
    /// <summary>Hugging Face base model folder.</summary>
    public required string BaseModelDirectory { get; init; }

    /// <summary>
    /// What <c>adapter_config.json</c> records as <c>base_model_name_or_path</c>; null records the
    /// full path of <see cref="BaseModelDirectory"/>. A build passes the project's own (relative)
    /// BaseModel, so the adapter, and every cache key after it, is the same in any checkout folder.
    /// </summary>
    public string? BaseModelName { get; init; }
    /// <summary>The parsed <c>lora.yaml</c>.</summary>
    public required TrainingConfig Config { get; init; }
    /// <summary>Training examples.</summary>
    public required IReadOnlyList<TokenizedExample> Train { get; init; }
    /// <summary>Validation examples (may be empty).</summary>
    public IReadOnlyList<TokenizedExample> Validation { get; init; } = [];
    /// <summary>Preference pairs for <c>trainer: dpo</c> / <c>orpo</c> (then <see cref="Train"/> is not used).</summary>
    public IReadOnlyList<TokenizedPair> PreferenceTrain { get; init; } = [];
    /// <summary>Validation preference pairs (may be empty).</summary>
    public IReadOnlyList<TokenizedPair> PreferenceValidation { get; init; } = [];
    /// <summary>Output folder: adapter, metrics.jsonl, train-summary.json (written atomically at the end).</summary>
    public required string OutDirectory { get; init; }
    /// <summary>Folder for the resumable checkpoint.</summary>
    public required string CheckpointDirectory { get; init; }
    /// <summary>Optional folder for the base weights with the adapter merged in.</summary>
    public string? MergeOutDirectory { get; init; }
    /// <summary>Optional PEFT adapter to start from instead of PEFT's random initialisation.</summary>
    public string? InitAdapterDirectory { get; init; }
    /// <summary>The CPU kernels (the model's, unless <see cref="Device"/> names another device).</summary>
    public required IComputeBackend Backend { get; init; }
    /// <summary>Where the model trains; null trains on the CPU with <see cref="Backend"/>.</summary>
    public ITrainingDevice? Device { get; init; }
    /// <summary>
    /// The ranks training this model together (one per GPU, over NCCL); null is one process alone.
    /// Each rank runs its own trainer with the same options; rank 0 writes checkpoints and outputs.
    /// </summary>
    public Distributed.IRankGroup? Ranks { get; init; }
    /// <summary>Receives plain informational lines for the user's log: the GPU memory plan, a resumed or saved checkpoint.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Written into train-summary.json.</summary>
    public string EngineVersion { get; init; } = "0.0.0";
}
