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
        var command = new Command("train", "Train a LoRA adapter (PEFT layout) on tokenized data.");
        foreach (var o in new Option[] { baseModel, baseModelName, data, config, output, checkpoint, device, mergeOut, initAdapter, threads }) command.Options.Add(o);
        command.SetAction((parse, cancellationToken) =>
        {
            var backend = new CpuBackend(parse.GetValue(threads));
            using var gpu = OpenDevice(parse.GetValue(device)!, parse.GetValue(baseModel)!);
            var dataDir = parse.GetValue(data)!;
            var trainPath = Path.Combine(dataDir, "train.bin");
            if (!File.Exists(trainPath))
                throw new FineTuneException("FT3026", "The data folder has no train.bin; run 'finetune tokenize' first.", dataDir);
            var validationPath = Path.Combine(dataDir, "validation.bin");
            var environment = ProgressEnvironment.FromProcess();
            // A live display owns the terminal while it runs, so the trainer's notes wait until it stops.
            var deferredNotes = new List<string>();
            var options = new TrainerOptions
            {
                BaseModelDirectory = parse.GetValue(baseModel)!,
                BaseModelName = parse.GetValue(baseModelName),
                Config = TrainingConfigLoader.Load(parse.GetValue(config)!),
                Train = TokenizedDatasetFile.Read(trainPath),
                Validation = File.Exists(validationPath) ? TokenizedDatasetFile.Read(validationPath) : [],
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

    /// <summary>
    /// The GPU to train on, or null for the CPU. <c>cuda</c> insists (FT31xx naming what is missing);
    /// <c>auto</c> takes the GPU when one is usable for this model and otherwise says why it trains on the CPU.
    /// </summary>
    private static CudaTrainingDevice? OpenDevice(string device, string baseModel)
    {
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
