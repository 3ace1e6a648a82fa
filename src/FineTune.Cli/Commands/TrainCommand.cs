using System.CommandLine;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Cli.Distributed;
using FineTune.Cli.Progress;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Distributed;
using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Model;
using FineTune.Engine.Training;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune train</c>: LoRA fine-tuning of a base model on tokenized data, resumable from a checkpoint
/// folder. On several GPUs it starts one process per GPU (this same command line, as a rank) and
/// supervises them; each rank trains through the same <see cref="Trainer"/> over an NCCL group.
/// </summary>
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
        var gpus = new Option<int?>("--gpus") { Description = "GPUs to train on, one process each (default: every visible GPU; CUDA_VISIBLE_DEVICES narrows them)." };
        var nnodes = new Option<int>("--nnodes") { Description = "Hosts training together (each runs this command with its --node-rank).", DefaultValueFactory = _ => 1 };
        var nodeRank = new Option<int>("--node-rank") { Description = "This host's index, 0..nnodes-1; host 0 is the master.", DefaultValueFactory = _ => 0 };
        var masterAddr = new Option<string?>("--master-addr") { Description = "Address of host 0, reachable from every host (needed with --nnodes > 1)." };
        var masterPort = new Option<int>("--master-port") { Description = "TCP port on host 0 for NCCL's bootstrap.", DefaultValueFactory = _ => LaunchPlan.DefaultPort };
        var command = new Command("train", "Train a LoRA adapter (PEFT layout) on tokenized data.");
        foreach (var o in new Option[] { baseModel, baseModelName, data, config, output, checkpoint, device, mergeOut, initAdapter, threads, sftCache, gpus, nnodes, nodeRank, masterAddr, masterPort })
            command.Options.Add(o);
        command.SetAction((parse, cancellationToken) =>
        {
            var backend = new CpuBackend(parse.GetValue(threads));
            var trainingConfig = TrainingConfigLoader.Load(parse.GetValue(config)!);
            var rankEnvironment = RankEnvironment.FromProcess();
            // Preference training runs in one process, on the CPU or one GPU: its step sums no gradients over ranks.
            if (rankEnvironment is null && trainingConfig.IsPreference && (parse.GetValue(gpus) is > 1 || parse.GetValue(nnodes) > 1))
                throw new FineTuneException("FT3122",
                    $"trainer: {trainingConfig.Trainer} trains on one GPU: --gpus (FineTuneGpuCount) above 1 and --nnodes are for SFT. Leave them unset (or 1).");
            if (rankEnvironment is null && !trainingConfig.IsPreference)
            {
                var plan = Plan(parse.GetValue(device)!, parse.GetValue(baseModel)!, parse.GetValue(gpus), parse.GetValue(nnodes), parse.GetValue(nodeRank),
                    parse.GetValue(masterAddr), parse.GetValue(masterPort));
                if (plan is { SingleProcess: false })
                {
                    Launch(plan, cancellationToken);
                    return Task.FromResult(0);
                }
            }
            using var gpu = rankEnvironment is null ? OpenDevice(parse.GetValue(device)!, parse.GetValue(baseModel)!, trainingConfig) : CudaTrainingDevice.Open(rankEnvironment.LocalRank);
            using var group = rankEnvironment is null ? null : JoinRanks(gpu!, rankEnvironment);
            var isRank0 = group is null || group.Rank == 0;
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
                Log = !isRank0 ? null : environment.Interactive ? deferredNotes.Add : Console.WriteLine,
                EngineVersion = ToolVersion.Current,
                Ranks = group,
            };
            TrainingResult result;
            try
            {
                if (!isRank0)
                {
                    // Rank 0 reports and writes; the others only train their share.
                    new Trainer(options).Run(null, cancellationToken);
                    return Task.FromResult(0);
                }
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
            catch (OperationCanceledException) when (group is not null && !cancellationToken.IsCancellationRequested)
            {
                // Another rank was asked to stop and every rank stopped at the same step (rank 0 saved it).
                Console.Error.WriteLine($"finetune: rank {group.Rank} stopped with the others.");
                return Task.FromResult(CliApp.Cancelled);
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
    /// The ranks of this run, or null to train in this process (on the CPU, or on one GPU through
    /// the same trainer without NCCL). <c>cuda</c> and <c>auto</c> (when it picks the GPU) take every
    /// visible GPU unless <c>--gpus</c> says how many.
    /// </summary>
    private static LaunchPlan? Plan(string device, string baseModel, int? gpus, int nodes, int nodeRank, string? masterAddress, int masterPort)
    {
        if (gpus is < 1) throw new FineTuneException("FT7030", $"--gpus (FineTuneGpuCount) is {gpus}; it must be at least 1.");
        var gpu = device switch
        {
            "cpu" => false,
            "cuda" => true,
            "auto" => CudaDevice.IsAvailable(out _) && CudaTrainingModel.Supports(ModelConfig.Load(baseModel), out _),
            _ => throw new FineTuneException("FT3027", $"Unknown device '{device}'; use auto, cpu or cuda."),
        };
        if (!gpu)
        {
            if (device == "cpu" && (gpus is > 1 || nodes > 1))
                throw new FineTuneException("FT7031", "--gpus (FineTuneGpuCount) and --nnodes need --device cuda (FineTuneDevice=cuda or auto on a GPU machine); the CPU trains in one process.");
            return null;
        }
        return LaunchPlan.Resolve(gpus, CudaDevice.Count(), nodes, nodeRank, masterAddress, masterPort);
    }

    /// <summary>Starts this host's ranks with this command line and waits for them (FT3154 when one fails).</summary>
    private static void Launch(LaunchPlan plan, CancellationToken cancellationToken)
    {
        var timeout = RankEnvironment.TimeoutFrom(Environment.GetEnvironmentVariable);
        // On one host this process holds NCCL's bootstrap root (ncclGetUniqueId); across hosts rank 0 does, at --master-addr.
        var id = plan.NcclCommId is null ? NcclRankGroup.CreateUniqueId() : null;
        Console.WriteLine($"Training on {plan.GpusPerNode} GPUs of this host" +
            (plan.Nodes > 1 ? $" (host {plan.NodeRank} of {plan.Nodes}, {plan.WorldSize} ranks, master {plan.NcclCommId})" : "") +
            $", one process each, over {NcclRankGroup.Describe()}.");
        var ranks = Enumerable.Range(0, plan.GpusPerNode)
            .Select(local => RankLauncher.ThisCommandAs(plan.Rank(local, id, timeout), CliApp.Arguments, plan.NcclCommId))
            .ToList();
        RankLauncher.Run(ranks, plan.NodeRank * plan.GpusPerNode, TimeSpan.FromSeconds(15), cancellationToken);
    }

    /// <summary>Joins the NCCL group this process was started into.</summary>
    private static NcclRankGroup JoinRanks(CudaTrainingDevice gpu, RankEnvironment rank)
    {
        var id = rank.UniqueId ?? NcclRankGroup.CreateUniqueId();
        return NcclRankGroup.Join(gpu.Context.Device, id, rank.Rank, rank.WorldSize, rank.Timeout);
    }

    /// <summary>
    /// The GPU to train on, or null for the CPU. <c>cuda</c> insists (FT31xx naming what is missing);
    /// <c>auto</c> takes the GPU when one is usable for this model and otherwise says why it trains on the CPU.
    /// </summary>
    private static CudaTrainingDevice? OpenDevice(string device, string baseModel, TrainingConfig config)
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
