using System.CommandLine;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Cli.Progress;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;
using FineTune.Engine.Training;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune train</c>: LoRA fine-tuning of a base model on tokenized data, resumable from a checkpoint folder.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base-model") { Description = "Hugging Face model folder (config.json, *.safetensors).", Required = true };
        var baseModelName = new Option<string?>("--base-model-name") { Description = "Recorded as base_model_name_or_path in adapter_config.json (default: the full path of --base-model)." };
        var data = new Option<string>("--data") { Description = "Folder with train.bin (and validation.bin) from 'finetune tokenize'.", Required = true };
        var config = new Option<string>("--config") { Description = "lora.yaml.", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder: adapter, metrics.jsonl, train-summary.json.", Required = true };
        var checkpoint = new Option<string>("--checkpoint-dir") { Description = "Folder for the resumable checkpoint.", Required = true };
        var device = new Option<string>("--device") { Description = "auto, cpu or cuda.", DefaultValueFactory = _ => "auto" };
        var mergeOut = new Option<string?>("--merge-out") { Description = "Also write the base weights with the adapter merged in to this folder." };
        var initAdapter = new Option<string?>("--init-adapter") { Description = "Start from this PEFT adapter instead of a fresh initialisation." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)." };
        var sftCache = new Option<string?>("--sft-cache") { Description = "With trainer: dpo/orpo and SFT data: keep the SFT stage's adapter here, keyed by its inputs, so a change to the preference data alone re-runs only the preference stage." };
        var command = new Command("train", "Train a LoRA adapter (PEFT layout) on tokenized data.");
        foreach (var o in new Option[] { baseModel, baseModelName, data, config, output, checkpoint, device, mergeOut, initAdapter, threads, sftCache }) command.Options.Add(o);
        command.SetAction((parse, cancellationToken) =>
        {
            var backend = new CpuBackend(parse.GetValue(threads));
            var trainingConfig = TrainingConfigLoader.Load(parse.GetValue(config)!);
            using var gpu = OpenDevice(parse.GetValue(device)!, parse.GetValue(baseModel)!, trainingConfig);
            var dataDir = parse.GetValue(data)!;
            var trainPath = Path.Combine(dataDir, "train.bin");
            if (!File.Exists(trainPath))
                throw new FineTuneException("FT3026", "The data folder has no train.bin; run 'finetune tokenize' first.", dataDir);
            var validationPath = Path.Combine(dataDir, "validation.bin");
            var environment = ProgressEnvironment.FromProcess();
            // A live display owns the terminal while it runs, so the trainer's notes wait until it stops.
            var deferredNotes = new List<string>();
            var preferencePath = Path.Combine(dataDir, PreferenceDatasetFiles.TrainBin);
            var preferenceValidationPath = Path.Combine(dataDir, PreferenceDatasetFiles.ValidationBin);
            var options = new TrainerOptions
            {
                BaseModelDirectory = parse.GetValue(baseModel)!,
                BaseModelName = parse.GetValue(baseModelName),
                Config = trainingConfig,
                Train = TokenizedDatasetFile.Read(trainPath),
                Validation = File.Exists(validationPath) ? TokenizedDatasetFile.Read(validationPath) : [],
                PreferenceTrain = trainingConfig.IsPreference && File.Exists(preferencePath) ? PreferenceDatasetFiles.ReadTokenized(preferencePath) : [],
                PreferenceValidation = trainingConfig.IsPreference && File.Exists(preferenceValidationPath) ? PreferenceDatasetFiles.ReadTokenized(preferenceValidationPath) : [],
                OutDirectory = parse.GetValue(output)!,
                CheckpointDirectory = parse.GetValue(checkpoint)!,
                MergeOutDirectory = parse.GetValue(mergeOut),
                InitAdapterDirectory = parse.GetValue(initAdapter),
                Backend = backend,
                Device = gpu,
                Log = environment.Interactive ? deferredNotes.Add : Console.WriteLine,
                EngineVersion = ToolVersion.Current,
            };
            TrainingResult result;
            try
            {
                // With SFT data as well, SFT runs first and preference training starts from (and is referenced to) its adapter.
                if (trainingConfig.IsPreference && options.Train.Count > 0)
                {
                    var sftKey = SftKey(trainPath, validationPath, trainingConfig, options.BaseModelDirectory);
                    var sftOut = parse.GetValue(sftCache) is { } cacheDir ? Path.Combine(cacheDir, sftKey[..32]) : Path.Combine(options.CheckpointDirectory, "sft");
                    var sft = options with
                    {
                        Config = trainingConfig with { Trainer = "sft" },
                        OutDirectory = sftOut,
                        CheckpointDirectory = Path.Combine(options.CheckpointDirectory, "sft-checkpoint"),
                        PreferenceTrain = [],
                        PreferenceValidation = [],
                        MergeOutDirectory = null,
                    };
                    // A cancelled build resumes in the preference stage; the SFT adapter is reused only when made from these very inputs.
                    var keyFile = Path.Combine(sftOut, "sft.inputs");
                    if (!File.Exists(keyFile) || File.ReadAllText(keyFile) != sftKey)
                    {
                        Console.WriteLine($"SFT on {options.Train.Count} examples, then {trainingConfig.Trainer.ToUpperInvariant()} on {options.PreferenceTrain.Count} pairs from its adapter.");
                        using var sftReporter = TrainingProgressReporter.Create(Path.GetFileName(Path.GetFullPath(options.BaseModelDirectory)), options.Config.LoggingSteps, environment);
                        new Trainer(sft).Run(sftReporter, cancellationToken);
                        sftReporter.Complete([Path.Combine(sftOut, "adapter_model.safetensors")]);
                        FineTune.Core.IO.AtomicFile.WriteAllText(keyFile, sftKey);
                    }
                    else Console.WriteLine($"SFT adapter from an earlier run of this step: {sftOut}.");
                    options = options with { InitAdapterDirectory = sftOut };
                }
                using var reporter = TrainingProgressReporter.Create(Path.GetFileName(Path.GetFullPath(options.BaseModelDirectory)), options.Config.LoggingSteps, environment);
                result = new Trainer(options).Run(reporter, cancellationToken);
                reporter.Complete([Path.Combine(options.OutDirectory, "adapter_model.safetensors"), Path.Combine(options.OutDirectory, "metrics.jsonl")]);
            }
            finally
            {
                foreach (var note in deferredNotes) Console.WriteLine(note);
            }
            var eval = result.FinalEvalLoss is { } e ? FormattableString.Invariant($", eval loss {e:F4}") : "";
            Console.WriteLine(FormattableString.Invariant(
                $"Trained {result.Steps} steps, {result.Tokens} tokens in {result.Seconds:F1}s ({result.TokensPerSecond:F0} tokens/s): final loss {result.FinalTrainLoss:F4}{eval}. Adapter: {options.OutDirectory}"));
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>What the SFT stage depends on: its data, lora.yaml's SFT settings (not the preference keys), the base model and the tool.</summary>
    private static string SftKey(string trainPath, string validationPath, TrainingConfig config, string baseModel)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var path in new[] { trainPath, validationPath })
            if (File.Exists(path)) sha.AppendData(File.ReadAllBytes(path));
        var defaults = new TrainingConfig();
        var sft = config with
        {
            Trainer = "sft", Beta = defaults.Beta, LossType = defaults.LossType, LabelSmoothing = defaults.LabelSmoothing,
            MaxPromptLength = defaults.MaxPromptLength, MaxLength = defaults.MaxLength, TruncationMode = defaults.TruncationMode,
        };
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(sft)));
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(baseModel) + "\n" + ToolVersion.Current));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// The GPU to train on, or null for the CPU. <c>cuda</c> insists (FT31xx naming what is missing);
    /// <c>auto</c> takes the GPU when one is usable for this model and otherwise says why it trains on the CPU.
    /// </summary>
    private static CudaTrainingDevice? OpenDevice(string device, string baseModel, TrainingConfig config)
    {
        if (config.IsPreference && device != "cpu")
        {
            if (device == "cuda")
                throw new FineTuneException("FT3122",
                    $"trainer: {config.Trainer} runs on the CPU engine only; the CUDA engine trains SFT. Use FineTuneDevice=cpu (--device cpu) or auto.");
            if (device == "auto")
            {
                Console.WriteLine($"Training on the CPU: trainer: {config.Trainer} is not in the CUDA engine yet.");
                return null;
            }
        }
        switch (device)
        {
            case "cpu":
                return null;
            case "cuda":
                return CudaTrainingDevice.Open();
            case "auto":
                if (!CudaDevice.IsAvailable(out var reason))
                {
                    // The first sentence names what is missing; --device cuda prints the whole search.
                    var firstSentence = reason.IndexOf(". ", StringComparison.Ordinal) is var end and > 0 ? reason[..end] : reason.TrimEnd('.');
                    Console.WriteLine($"Training on the CPU: no usable CUDA GPU ({firstSentence}).");
                    return null;
                }
                if (!CudaTrainingModel.Supports(ModelConfig.Load(baseModel), out var shape))
                {
                    Console.WriteLine($"Training on the CPU: the CUDA backend needs {shape}.");
                    return null;
                }
                return CudaTrainingDevice.Open();
            default:
                throw new FineTuneException("FT3027", $"Unknown device '{device}'; use auto, cpu or cuda.");
        }
    }
}
