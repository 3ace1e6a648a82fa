using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;
using FineTune.Core.Progress;
using FineTune.Engine.Distributed;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Training.Preference;

namespace FineTune.Engine.Training;

/// <summary>
/// LoRA fine-tuning of a Llama-family model: causal LM loss on target tokens, gradient
/// accumulation, clipping, AdamW with a warm-up schedule, periodic evaluation and checkpoints,
/// resumption, and PEFT-layout output. The loss of an optimizer step is the mean over all target
/// tokens of all its micro-batches.
/// </summary>
/// <remarks>
/// With several ranks (<see cref="TrainerOptions.Ranks"/>, one process per GPU) every rank runs this
/// same loop: each takes its share of the step's examples (<see cref="StepShards"/>), scales its
/// loss by the step's target count over all ranks (known to each: every rank reads all the data),
/// the gradients are summed over the ranks in a fixed order, and each rank takes the same AdamW
/// step. One process alone is the one-rank case of the same code.
/// </remarks>
public sealed class Trainer(TrainerOptions options)
{
    private readonly TrainerOptions _o = options;

    /// <summary>Runs (or resumes) training and writes the outputs. Cancellation saves a checkpoint, then throws <see cref="OperationCanceledException"/>.</summary>
    public TrainingResult Run(IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var cfg = _o.Config;
        // The device reads the weights itself: the CPU as float32, the GPU streaming them as bf16.
        using var baseModel = BaseModel.Open(_o.BaseModelDirectory);
        var architecture = baseModel.Config;
        var train = Truncate(_o.Train, "training");
        var validation = Truncate(_o.Validation, "validation");
        var pairs = _o.PreferenceTrain;
        var validationPairs = _o.PreferenceValidation;
        PreferenceObjective? objective = null;
        if (cfg.IsPreference)
        {
            if (pairs.Count == 0)
                throw new FineTuneException("FT3124", $"lora.yaml sets trainer: {cfg.Trainer}, but there are no preference pairs to train on (preference-train.bin is missing or empty). Add a FineTuneDataset with Format=\"preference\".");
            objective = new PreferenceObjective(cfg, pairs, "training");
            _ = new PreferenceObjective(cfg, validationPairs, "validation");
            // Pairs are the examples of a preference run: the plan, the fingerprint and the memory bound see both halves.
            train = [.. pairs.SelectMany(p => new[] { p.Chosen, p.Rejected })];
            validation = [.. validationPairs.SelectMany(p => new[] { p.Chosen, p.Rejected })];
        }
        else if (train.Count == 0 || train.All(e => e.TargetCount == 0 || e.Length < 2))
            throw new FineTuneException("FT3022", "The training data has no target tokens: nothing to learn from. Check the dataset and train_on_responses_only.");
        var adapter = new LoraAdapter(architecture, LoraSettings.From(cfg));
        if (_o.InitAdapterDirectory is { } init)
        {
            var start = LoraAdapter.Load(init, architecture);
            if (start.Settings.Rank != cfg.R || !start.Settings.Targets.SequenceEqual(adapter.Settings.Targets))
                throw new FineTuneException("FT3018", "The initial adapter's r or target_modules differ from lora.yaml.", init);
            for (var i = 0; i < adapter.Tensors.Count; i++) start.Tensors[i].Value.CopyTo(adapter.Tensors[i].Value, 0);
        }
        else
        {
            adapter.Initialize(cfg.Seed);
        }
        var plan = new BatchPlan(objective is null ? train.Count : pairs.Count, cfg.PerDeviceTrainBatchSize, cfg.GradientAccumulationSteps, cfg.Seed, cfg.MaxSteps, cfg.NumTrainEpochs);
        var schedule = new LrSchedule(cfg.LrSchedulerType, cfg.LearningRate, plan.TotalSteps, cfg.WarmupSteps, cfg.WarmupRatio);
        var fingerprint = Fingerprint(baseModel, adapter, train);
        var group = _o.Ranks ?? SingleRank.Instance;
        var writer = group.Rank == 0;

        // A damaged checkpoint may be detected after some tensors were read into the adapter: keep the start to go back to.
        var initial = adapter.Tensors.Select(t => (float[])t.Value.Clone()).ToArray();
        var state = Checkpoint.TryLoad(_o.CheckpointDirectory, adapter, fingerprint, out var mismatched, out var damage);
        if (mismatched)
            CanonicalMessage.Warn("FT3023", "The checkpoint in the checkpoint folder was made from other inputs; starting over.", _o.CheckpointDirectory);
        if (damage is not null)
        {
            for (var i = 0; i < adapter.Tensors.Count; i++)
            {
                initial[i].CopyTo(adapter.Tensors[i].Value, 0);
                Array.Clear(adapter.Tensors[i].M);
                Array.Clear(adapter.Tensors[i].V);
            }
            CanonicalMessage.Warn("FT3070", $"The checkpoint in {Path.Combine(_o.CheckpointDirectory, Checkpoint.Folder)} is damaged ({damage}); it was discarded and training starts again from step 0.", _o.CheckpointDirectory);
            if (writer) Checkpoint.Delete(_o.CheckpointDirectory);
        }
        AgreeOnStart(group, fingerprint, state?.Step ?? 0);
        var checkpointPath = Path.Combine(_o.CheckpointDirectory, Checkpoint.Folder);
        if (state is not null)
            _o.Log?.Invoke($"Resuming from the checkpoint at step {state.Step}/{plan.TotalSteps} in {checkpointPath}" +
                (state.WorldSize == group.Size ? "." : $" (written by {state.WorldSize} rank{(state.WorldSize == 1 ? "" : "s")}, resumed on {group.Size})."));
        var lossRows = train.Select(PackedBatch.LossRowCount).ToArray();
        var device = _o.Device ?? new CpuTrainingDevice(_o.Backend);
        var longest = train.Concat(validation).Max(e => e.Length);
        using var model = device.CreateModel(baseModel, adapter, cfg, longest, _o.Log);
        ReferenceLogps[]? references = null, validationReferences = null;
        if (objective?.NeedsReference == true)
            (references, validationReferences) = References(model, pairs, validationPairs, fingerprint, resumed: state is not null);
        SortedDictionary<string, double>? lastMetrics = null;
        var metrics = state?.MetricLines ?? [];
        var savedStep = state?.Step ?? -1;
        var firstStep = state?.Step ?? 0;
        long tokens = state?.Tokens ?? 0;
        var priorSeconds = state?.Seconds ?? 0;
        var lastLoss = state?.LastLoss ?? double.NaN;
        double? lastEval = null;
        var clock = Stopwatch.StartNew();
        double Elapsed() => priorSeconds + clock.Elapsed.TotalSeconds;

        for (var step = firstStep; step < plan.TotalSteps; step++)
        {
            if (StopAgreed(group, cancellationToken))
            {
                // A periodic save of this very step is already on disk; writing it again only delays the stop.
                if (savedStep != step && writer)
                {
                    model.CopyAdapterTo(adapter);
                    Checkpoint.Save(_o.CheckpointDirectory, adapter, new Checkpoint.State(step, tokens, Elapsed(), lastLoss, fingerprint, metrics, group.Size));
                }
                _o.Log?.Invoke($"Stopped at step {step}/{plan.TotalSteps}; the checkpoint in {checkpointPath} holds it and the next run resumes from there.");
                throw new OperationCanceledException(cancellationToken.IsCancellationRequested ? cancellationToken : CancellationToken.None);
            }
            var (loss, stepTokens, stepMetrics) = objective is null
                ? TrainStep(model, plan, train, lossRows, step, group)
                : PreferenceStep(objective, model, plan, pairs, references, step);
            lastMetrics = stepMetrics;
            tokens += stepTokens;
            var norm = model.GradNorm();
            if (!double.IsFinite(loss) || !double.IsFinite(norm))
                throw new FineTuneException("FT3024",
                    $"Training diverged at step {step + 1}: the {(double.IsFinite(loss) ? "gradient norm" : "loss")} is not a finite number. Lower learning_rate or set max_grad_norm.");
            var lr = schedule.At(step);
            model.ClipAndStep(norm, cfg.MaxGradNorm, step + 1, lr);
            lastLoss = loss;
            var seconds = Elapsed();
            var epoch = (double)(step + 1) / plan.StepsPerEpoch;
            metrics.Add(MetricLine(step + 1, epoch, loss, lr, norm, tokens, seconds, null, stepMetrics));
            var last = step + 1 == plan.TotalSteps;
            var report = new TrainingProgress
            {
                Step = step + 1, TotalSteps = plan.TotalSteps, Epoch = epoch, Loss = loss, LearningRate = lr, GradNorm = norm,
                Tokens = tokens, TokensPerSecond = tokens / Math.Max(1e-9, seconds), Elapsed = TimeSpan.FromSeconds(seconds),
                PeakMemoryBytes = model.PeakMemoryBytes,
                Metrics = stepMetrics ?? [],
            };
            if ((step + 1) % cfg.LoggingSteps == 0 || last) progress?.Report(report);
            if (validation.Count > 0 && (cfg.EvalSteps > 0 && (step + 1) % cfg.EvalSteps == 0 || last))
            {
                SortedDictionary<string, double>? evalMetrics = null;
                if (objective is null) lastEval = Evaluate(model, validation, cfg.PerDeviceTrainBatchSize, group);
                else (lastEval, evalMetrics) = EvaluatePairs(objective, model, validationPairs, validationReferences);
                metrics.Add(MetricLine(step + 1, epoch, null, null, null, tokens, Elapsed(), lastEval, evalMetrics));
                progress?.Report(report with { EvalLoss = lastEval, Metrics = evalMetrics ?? [] });
            }
            if (cfg.SaveSteps > 0 && (step + 1) % cfg.SaveSteps == 0 && !last)
            {
                if (writer)
                {
                    model.CopyAdapterTo(adapter);
                    Checkpoint.Save(_o.CheckpointDirectory, adapter, new Checkpoint.State(step + 1, tokens, Elapsed(), lastLoss, fingerprint, metrics, group.Size));
                    _o.Log?.Invoke($"Checkpoint saved at step {step + 1}/{plan.TotalSteps} in {checkpointPath}.");
                }
                savedStep = step + 1;
            }
        }
        if (validation.Count > 0 && lastEval is null)
            lastEval = objective is null ? Evaluate(model, validation, cfg.PerDeviceTrainBatchSize, group) : EvaluatePairs(objective, model, validationPairs, validationReferences).Loss;

        var total = Elapsed();
        var deviceName = group.Size == 1 ? device.Name : $"{device.Name} x{group.Size} ranks";
        var result = new TrainingResult(lastLoss, lastEval, plan.TotalSteps, tokens, total, tokens / Math.Max(1e-9, total), _o.EngineVersion, deviceName);
        model.CopyAdapterTo(adapter);
        if (!writer) return result;
        WriteOutputs(adapter, metrics, result, references is null ? null : ReferenceFile.ToJson(fingerprint, references, validationReferences!), lastMetrics);
        if (_o.MergeOutDirectory is { } mergeOut) WriteMerged(baseModel.Float32, adapter, mergeOut);
        Checkpoint.Delete(_o.CheckpointDirectory);
        ReferenceFile.Delete(_o.CheckpointDirectory);
        return result;
    }

    /// <summary>
    /// The reference model's log-probabilities, computed once before the first step and kept beside
    /// the checkpoint (a resumed run's adapter has moved on, so it could not recompute them from the
    /// start adapter). The reference is the model as training starts: the base model with the adapter
    /// switched off, or with the start adapter (an SFT step's) when one is given.
    /// </summary>
    private (ReferenceLogps[], ReferenceLogps[]) References(ITrainingModel model, IReadOnlyList<TokenizedPair> pairs, IReadOnlyList<TokenizedPair> validationPairs, string fingerprint, bool resumed)
    {
        if (ReferenceFile.TryLoad(_o.CheckpointDirectory, fingerprint, pairs.Count, validationPairs.Count) is { } cached) return cached;
        var startAdapter = _o.InitAdapterDirectory is not null;
        if (resumed && startAdapter)
            throw new FineTuneException("FT3125", $"The checkpoint in {_o.CheckpointDirectory} has no reference log-probabilities of the start adapter; delete the folder to start over.", _o.CheckpointDirectory);
        _o.Log?.Invoke($"Reference log-probabilities of {pairs.Count + validationPairs.Count} pairs ({(startAdapter ? "the start adapter" : "the base model, adapter switched off")}).");
        var batch = _o.Config.PerDeviceTrainBatchSize;
        var train = PreferenceObjective.References(model, pairs, batch, adapterEnabled: startAdapter);
        var validation = PreferenceObjective.References(model, validationPairs, batch, adapterEnabled: startAdapter);
        ReferenceFile.Save(_o.CheckpointDirectory, ReferenceFile.ToJson(fingerprint, train, validation));
        return (train, validation);
    }

    private (double Loss, long Tokens, SortedDictionary<string, double>? Metrics) PreferenceStep(PreferenceObjective objective, ITrainingModel model, BatchPlan plan,
        IReadOnlyList<TokenizedPair> pairs, ReferenceLogps[]? references, int step)
    {
        model.ZeroGradients();
        var micro = Enumerable.Range(0, plan.Accumulation).Select(m => (IReadOnlyList<int>)plan.Batch(step, m)).ToList();
        return objective.Run(model, micro, pairs, references, train: true);
    }

    private (double Loss, SortedDictionary<string, double> Metrics) EvaluatePairs(PreferenceObjective objective, ITrainingModel model, IReadOnlyList<TokenizedPair> pairs, ReferenceLogps[]? references)
    {
        var batches = Enumerable.Range(0, (pairs.Count + _o.Config.PerDeviceTrainBatchSize - 1) / _o.Config.PerDeviceTrainBatchSize)
            .Select(b => (IReadOnlyList<int>)[.. Enumerable.Range(b * _o.Config.PerDeviceTrainBatchSize, Math.Min(_o.Config.PerDeviceTrainBatchSize, pairs.Count - b * _o.Config.PerDeviceTrainBatchSize))])
            .ToList();
        var (loss, _, m) = objective.Run(model, batches, pairs, references, train: false);
        return (loss, new SortedDictionary<string, double>(m.ToDictionary(kv => "eval_" + kv.Key, kv => kv.Value), StringComparer.Ordinal));
    }

    /// <summary>
    /// One optimizer step on this rank's share of the step's examples: every micro-batch's loss is
    /// scaled by the step's target count over all ranks, so the summed gradients are those of the
    /// mean loss over the whole step, as on one GPU. Returns that mean loss and the step's tokens (all ranks').
    /// </summary>
    private (double Loss, long Tokens, SortedDictionary<string, double>? Metrics) TrainStep(ITrainingModel model, BatchPlan plan, IReadOnlyList<TokenizedExample> train, int[] lossRows, int step, IRankGroup group)
    {
        model.ZeroGradients();
        var shards = StepShards.Split(plan, step, i => train[i].Length, group.Size);
        long targets = 0, tokens = 0;
        foreach (var i in shards.SelectMany(r => r).SelectMany(b => b))
        {
            targets += lossRows[i];
            tokens += train[i].Length;
        }
        if (targets == 0) return (0, tokens, null);
        var batches = shards[group.Rank].Select(b => PackedBatch.FromExamples(b.Select(i => train[i]).ToList())).ToList();
        var scale = 1f / targets;
        var loss = 0.0;
        for (var m = 0; m < batches.Count; m++)
        {
            if (m == batches.Count - 1) model.BeginGradientSum(group);
            if (batches[m].LossRows.Length == 0) continue;
            // Micro-batch m of rank r is the (m·size + r)-th of the step: one rank keeps the plan's keys.
            var key = (ulong)(m * group.Size + group.Rank);
            model.DropoutKey = _o.Config.LoraDropout > 0
                ? DeterministicRandom.Mix(((ulong)(uint)_o.Config.Seed << 32) ^ ((ulong)step << 8) ^ key)
                : null;
            loss += model.ForwardBackward(batches[m], scale);
        }
        model.DropoutKey = null;
        model.SumGradients(group);
        return (RankOrder.Sum(group.AllGather([loss])) / targets, tokens, null);
    }

    /// <summary>
    /// Every rank must train the same inputs from the same step: a rank whose data, config or base
    /// model differ, or that found another checkpoint (a folder not shared between hosts), would
    /// silently train something else.
    /// </summary>
    private static void AgreeOnStart(IRankGroup group, string fingerprint, int startStep)
    {
        if (group.Size == 1) return;
        var head = Convert.FromHexString(fingerprint[..12]);
        var mine = (double)(((long)head[0] << 40) | ((long)head[1] << 32) | ((long)head[2] << 24) | ((long)head[3] << 16) | ((long)head[4] << 8) | head[5]);
        var all = group.AllGather([mine, startStep]);
        for (var r = 1; r < group.Size; r++)
        {
            if (all[2 * r] != all[0])
                throw new FineTuneException("FT3153",
                    $"Rank {r} trains other inputs than rank 0 (its data, lora.yaml or base model differ): every rank must read the same files.");
            if (all[2 * r + 1] != all[1])
                throw new FineTuneException("FT3153",
                    $"Rank {r} would resume at step {all[2 * r + 1]} but rank 0 at step {all[1]}: the checkpoint folder must be the same for every rank (shared between hosts), or empty on all.");
        }
    }

    /// <summary>Whether to stop before the next step: every rank stops at the same step when any was asked to.</summary>
    private static bool StopAgreed(IRankGroup group, CancellationToken cancellationToken)
    {
        var mine = cancellationToken.IsCancellationRequested;
        return group.Size == 1 ? mine : group.Any(mine);
    }

    /// <summary>Mean loss over all target tokens of <paramref name="examples"/>.</summary>
    /// <remarks>With several ranks each evaluates every <see cref="IRankGroup.Size"/>-th batch and the sums are gathered.</remarks>
    public static double Evaluate(ITrainingModel model, IReadOnlyList<TokenizedExample> examples, int batchSize, IRankGroup? group = null)
    {
        group ??= SingleRank.Instance;
        model.DropoutKey = null;
        double sum = 0;
        long count = 0;
        for (var i = group.Rank * batchSize; i < examples.Count; i += batchSize * group.Size)
        {
            var batch = PackedBatch.FromExamples(examples.Skip(i).Take(batchSize).ToList());
            if (batch.LossRows.Length == 0) continue;
            sum += model.ForwardBackward(batch, 0);
            count += batch.LossRows.Length;
        }
        if (group.Size > 1)
        {
            var all = group.AllGather([sum, count]);
            sum = RankOrder.Sum(Enumerable.Range(0, group.Size).Select(r => all[2 * r]).ToArray());
            count = (long)RankOrder.Sum(Enumerable.Range(0, group.Size).Select(r => all[2 * r + 1]).ToArray());
        }
        return count == 0 ? double.NaN : sum / count;
    }

    private IReadOnlyList<TokenizedExample> Truncate(IReadOnlyList<TokenizedExample> examples, string which)
    {
        var max = _o.Config.MaxSeqLength;
        var longer = examples.Count(e => e.Length > max);
        if (longer == 0) return examples;
        CanonicalMessage.Warn("FT3025",
            $"{longer} of {examples.Count} {which} examples are longer than max_seq_length ({max}) and were truncated; raise max_seq_length to keep them whole.");
        return examples.Select(e => e.Length <= max ? e : new TokenizedExample(e.Ids[..max], e.Targets[..max])).ToList();
    }

    private string Fingerprint(BaseModel baseModel, LoraAdapter adapter, IReadOnlyList<TokenizedExample> train)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(_o.Config)));
        sha.AppendData(Encoding.UTF8.GetBytes(baseModel.Config.ToJson()));
        foreach (var e in train)
        {
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(e.Ids.AsSpan()));
            sha.AppendData(e.Targets.Select(t => (byte)(t ? 1 : 0)).ToArray());
        }
        // The starting adapter (seeded or given) and a sample of the base weights tie the checkpoint to them.
        foreach (var t in adapter.Tensors) sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Value.AsSpan()));
        sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(baseModel.Files.ReadF32("model.norm.weight").AsSpan()));
        sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(baseModel.Files.ReadF32(LlamaWeights.LinearName(0, Projection.Q)).AsSpan()));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static string MetricLine(int step, double epoch, double? loss, double? lr, double? norm, long tokens, double seconds, double? evalLoss,
        SortedDictionary<string, double>? extra = null)
    {
        var o = new JsonObject { ["step"] = step, ["epoch"] = Math.Round(epoch, 6) };
        if (loss is { } l) o["loss"] = l;
        if (lr is { } r) o["learning_rate"] = r;
        if (norm is { } n) o["grad_norm"] = n;
        if (evalLoss is { } e) o["eval_loss"] = e;
        foreach (var (k, v) in extra ?? []) o[k] = v;
        o["tokens"] = tokens;
        o["tokens_per_second"] = Math.Round(tokens / Math.Max(1e-9, seconds), 3);
        o["elapsed_seconds"] = Math.Round(seconds, 3);
        return o.ToJsonString();
    }

    private void WriteOutputs(LoraAdapter adapter, List<string> metrics, TrainingResult r, string? referenceJson, SortedDictionary<string, double>? lastMetrics) =>
        AtomicFile.WriteDirectory(_o.OutDirectory, dir =>
        {
            if (referenceJson is not null) File.WriteAllText(Path.Combine(dir, ReferenceFile.Name), referenceJson);
            adapter.Save(dir, _o.BaseModelName ?? Path.GetFullPath(_o.BaseModelDirectory));
            File.WriteAllText(Path.Combine(dir, "metrics.jsonl"), string.Concat(metrics.Select(m => m + "\n")));
            var summary = new JsonObject
            {
                ["final_train_loss"] = r.FinalTrainLoss,
                ["final_eval_loss"] = r.FinalEvalLoss is { } e && double.IsFinite(e) ? e : null,
                ["steps"] = r.Steps,
                ["tokens"] = r.Tokens,
                ["seconds"] = Math.Round(r.Seconds, 3),
                ["tokens_per_second"] = Math.Round(r.TokensPerSecond, 3),
                ["engine_version"] = r.EngineVersion,
                ["device"] = r.Device,
            };
            if (_o.Config.IsPreference)
            {
                summary["trainer"] = _o.Config.Trainer;
                var final = new JsonObject();
                foreach (var (k, v) in lastMetrics ?? []) final[k] = v;
                summary["final_metrics"] = final;
            }
            if (Weights.FourBit.FourBitSettings.From(_o.Config) is { } fourBit) summary["base_weights"] = fourBit.ToString();
            File.WriteAllText(Path.Combine(dir, "train-summary.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        });

    private void WriteMerged(LlamaWeights weights, LoraAdapter adapter, string outDirectory)
    {
        adapter.MergeInto(weights);
        AtomicFile.WriteDirectory(outDirectory, dir =>
        {
            Weights.SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), weights.ToTensors(), new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var name in new[] { "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json" })
            {
                var src = Path.Combine(_o.BaseModelDirectory, name);
                if (File.Exists(src)) File.Copy(src, Path.Combine(dir, name));
            }
        });
    }
}
