using System.Globalization;
using FineTune.Core.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FineTune.Core.Config;

/// <summary>
/// Reads <c>lora.yaml</c> strictly: an unknown key, a wrong type or an out-of-range value is an
/// error at its line, and a misspelt key gets the closest known key as a suggestion.
/// </summary>
public static class TrainingConfigLoader
{
    private delegate TrainingConfig Setter(TrainingConfig c, YamlNode value, Reader r);

    private static readonly Dictionary<string, Setter> Keys = new(StringComparer.Ordinal)
    {
        ["r"] = (c, v, r) => c with { R = r.Int(v, min: 1) },
        ["lora_alpha"] = (c, v, r) => c with { LoraAlpha = r.Positive(v) },
        ["lora_dropout"] = (c, v, r) => c with { LoraDropout = r.Double(v, min: 0, max: 0.999) },
        ["use_rslora"] = (c, v, r) => c with { UseRsLora = r.Bool(v) },
        ["target_modules"] = (c, v, r) => c with { TargetModules = r.Modules(v) },
        ["learning_rate"] = (c, v, r) => c with { LearningRate = r.Positive(v) },
        ["lr_scheduler_type"] = (c, v, r) => c with { LrSchedulerType = r.OneOf(v, "linear", "cosine", "constant") },
        ["warmup_steps"] = (c, v, r) => c with { WarmupSteps = r.Int(v, min: 0) },
        ["warmup_ratio"] = (c, v, r) => c with { WarmupRatio = r.Double(v, min: 0, max: 1) },
        ["weight_decay"] = (c, v, r) => c with { WeightDecay = r.Double(v, min: 0) },
        ["adam_beta1"] = (c, v, r) => c with { AdamBeta1 = r.Double(v, min: 0, max: 0.999999) },
        ["adam_beta2"] = (c, v, r) => c with { AdamBeta2 = r.Double(v, min: 0, max: 0.999999) },
        ["adam_epsilon"] = (c, v, r) => c with { AdamEpsilon = r.Positive(v) },
        ["max_grad_norm"] = (c, v, r) => c with { MaxGradNorm = r.Double(v, min: 0) },
        ["per_device_train_batch_size"] = (c, v, r) => c with { PerDeviceTrainBatchSize = r.Int(v, min: 1) },
        ["gradient_accumulation_steps"] = (c, v, r) => c with { GradientAccumulationSteps = r.Int(v, min: 1) },
        ["max_steps"] = (c, v, r) => c with { MaxSteps = r.Int(v, min: 0) },
        ["num_train_epochs"] = (c, v, r) => c with { NumTrainEpochs = r.Double(v, min: 0) },
        ["max_seq_length"] = (c, v, r) => c with { MaxSeqLength = r.Int(v, min: 2) },
        ["seed"] = (c, v, r) => c with { Seed = r.Int(v, min: 0) },
        ["gradient_checkpointing"] = (c, v, r) => r.Checkpointing(v) switch
        {
            "offload" => c with { GradientCheckpointing = true, OffloadCheckpoints = true },
            var on => c with { GradientCheckpointing = on == "true", OffloadCheckpoints = false },
        },
        ["gpu_memory_limit"] = (c, v, r) => c with { GpuMemoryLimit = r.Gibibytes(v) },
        ["eval_steps"] = (c, v, r) => c with { EvalSteps = r.Int(v, min: 0) },
        ["save_steps"] = (c, v, r) => c with { SaveSteps = r.Int(v, min: 0) },
        ["logging_steps"] = (c, v, r) => c with { LoggingSteps = r.Int(v, min: 1) },
        ["train_on_responses_only"] = (c, v, r) => c with { TrainOnResponsesOnly = r.Bool(v) },
        ["validation_split"] = (c, v, r) => c with { ValidationSplit = r.Double(v, min: 0, max: 0.5) },
        ["trainer"] = (c, v, r) => c with { Trainer = r.OneOf(v, "sft", "dpo", "orpo") },
        ["beta"] = (c, v, r) => c with { Beta = r.Positive(v) },
        ["loss_type"] = (c, v, r) => c with { LossType = r.OneOf(v, "sigmoid", "ipo", "hinge") },
        ["label_smoothing"] = (c, v, r) => c with { LabelSmoothing = r.Double(v, min: 0, max: 0.499) },
        ["max_prompt_length"] = (c, v, r) => c with { MaxPromptLength = r.Int(v, min: 1) },
        ["max_length"] = (c, v, r) => c with { MaxLength = r.Int(v, min: 2) },
        ["truncation_mode"] = (c, v, r) => c with { TruncationMode = r.OneOf(v, "keep_end", "keep_start") },
        ["load_in_4bit"] = (c, v, r) => c with { LoadIn4Bit = r.Bool(v) },
        ["bnb_4bit_quant_type"] = (c, v, r) => c with { Bnb4BitQuantType = r.OneOf(v, "nf4", "fp4") },
        ["bnb_4bit_use_double_quant"] = (c, v, r) => c with { Bnb4BitUseDoubleQuant = r.Bool(v) },
        ["bnb_4bit_compute_dtype"] = (c, v, r) => c with { Bnb4BitComputeDtype = r.ComputeDtype(v) },
    };

    /// <summary>Keys that only the named trainers read: setting one for another trainer is a mistake worth stopping for.</summary>
    private static readonly (string Key, string[] Trainers)[] TrainerKeys =
    [
        ("beta", ["dpo", "orpo"]), ("loss_type", ["dpo"]), ("label_smoothing", ["dpo"]),
        ("max_prompt_length", ["dpo", "orpo"]), ("max_length", ["dpo", "orpo"]), ("truncation_mode", ["dpo", "orpo"]),
    ];

    /// <summary>Every key <c>lora.yaml</c> accepts.</summary>
    public static IEnumerable<string> KnownKeys => Keys.Keys;

    /// <summary>Loads and validates a config file; a missing file is an error naming it.</summary>
    public static TrainingConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new FineTuneException("FT3001", $"LoRA config file '{path}' does not exist. Create it or fix the LoraConfig item's Include.", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses YAML text; <paramref name="file"/> is used in error locations.</summary>
    public static TrainingConfig Parse(string yaml, string file)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new FineTuneException("FT3002", $"Invalid YAML: {e.InnerException?.Message ?? e.Message}", file, (int)e.Start.Line, (int)e.Start.Column);
        }
        var config = new TrainingConfig();
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            return config;
        if (stream.Documents[0].RootNode is not YamlMappingNode map)
            throw new FineTuneException("FT3002", "The LoRA config must be a mapping of keys to values (e.g. 'r: 16').", file, Line(stream.Documents[0].RootNode), Col(stream.Documents[0].RootNode));
        var reader = new Reader(file);
        var seen = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        // Each key is read on its own, so every mistaken key is reported in one build; the checks
        // across keys below need every key read, so they wait until all were.
        var errors = new List<FineTuneException>();
        foreach (var (keyNode, valueNode) in map.Children)
        {
            try
            {
                config = ReadKey(config, keyNode, valueNode, reader, seen, file);
            }
            catch (FineTuneException e)
            {
                errors.Add(e);
            }
        }
        FineTuneErrors.ThrowIfAny(errors);
        CheckTrainerKeys(config, seen, file);
        if (config.MaxSteps == 0 && config.NumTrainEpochs <= 0)
            throw new FineTuneException("FT3004", "Set max_steps above 0 or num_train_epochs above 0: training would do nothing.", file, 1, 1);
        return config;
    }

    /// <summary>Reads one key into <paramref name="config"/>; an unknown key or a wrong value throws.</summary>
    private static TrainingConfig ReadKey(TrainingConfig config, YamlNode keyNode, YamlNode valueNode, Reader reader, Dictionary<string, YamlNode> seen, string file)
    {
        var key = ((YamlScalarNode)keyNode).Value ?? "";
        if (key == "packing")
        {
            // TRL's key, read so that a TRL config's `packing: false` (its default) loads as it is.
            reader.Key = key;
            if (!reader.Bool(valueNode)) return config;
            throw new FineTuneException("FT3170",
                "packing: true is not offered. Batches are already padding-free: each example is laid end to end with no padding to the longest, and attention never crosses examples, " +
                "which is the speed TRL's packing buys; its packing would also change how many examples share an optimizer step. " +
                "Remove the line (or set it to false); raise per_device_train_batch_size for more examples per step.",
                file, Line(keyNode), Col(keyNode));
        }
        if (!Keys.TryGetValue(key, out var set))
        {
            var hint = Suggest(key);
            throw new FineTuneException("FT3003",
                $"Unknown key '{key}' in LoRA config." + (hint is null ? "" : $" Did you mean '{hint}'?") + $" Known keys: {string.Join(", ", Keys.Keys)}.",
                file, Line(keyNode), Col(keyNode));
        }
        reader.Key = key;
        config = set(config, valueNode, reader);
        seen[key] = keyNode;
        return config;
    }

    private static void CheckTrainerKeys(TrainingConfig config, Dictionary<string, YamlNode> seen, string file)
    {
        foreach (var (key, trainers) in TrainerKeys)
        {
            if (!seen.TryGetValue(key, out var node) || trainers.Contains(config.Trainer)) continue;
            throw new FineTuneException("FT3120",
                $"{key}: applies to trainer: {string.Join(" or ", trainers)}, but this config trains with trainer: {config.Trainer}. Remove {key} or set trainer.",
                file, Line(node), Col(node));
        }
        if (config.LabelSmoothing > 0 && config.LossType != "sigmoid")
            throw new FineTuneException("FT3121",
                $"label_smoothing: only the sigmoid DPO loss has label smoothing (conservative DPO); loss_type: {config.LossType} has none. Remove label_smoothing or use loss_type: sigmoid.",
                file, Line(seen["label_smoothing"]), Col(seen["label_smoothing"]));
        if (config.IsPreference && config.MaxPromptLength >= config.MaxLength)
            throw new FineTuneException("FT3121",
                $"max_prompt_length: {config.MaxPromptLength} leaves no room for the completion within max_length: {config.MaxLength}. Make max_prompt_length smaller than max_length.",
                file, seen.TryGetValue("max_prompt_length", out var n) ? Line(n) : 1, seen.TryGetValue("max_prompt_length", out n) ? Col(n) : 1);
    }

    /// <summary>The known key closest to <paramref name="key"/> by edit distance, if any is close.</summary>
    public static string? Suggest(string key)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var k in Keys.Keys)
        {
            var d = EditDistance(key, k);
            if (d < bestDistance) (best, bestDistance) = (k, d);
        }
        return bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }

    private static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) prev[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    private static int Line(YamlNode n) => (int)n.Start.Line;
    private static int Col(YamlNode n) => (int)n.Start.Column;

    /// <summary>Reads values; every message starts with the key being read and says what it accepts.</summary>
    private sealed class Reader(string file)
    {
        public string Key { get; set; } = "";

        private string Scalar(YamlNode v, string expected) => v switch
        {
            YamlScalarNode { Value: { Length: > 0 } s } => s,
            YamlScalarNode => throw Error(v, $"expected {expected}, found nothing."),
            YamlSequenceNode => throw Error(v, $"expected {expected}, found a list."),
            _ => throw Error(v, $"expected {expected}, found a mapping."),
        };

        public int Int(YamlNode v, int min)
        {
            var range = $"a whole number of at least {min}";
            var s = Scalar(v, range);
            if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x))
                throw Error(v, $"expected {range}, found '{s}'.");
            if (x < min) throw Error(v, $"must be {range}, found {x}.");
            return x;
        }

        public double Double(YamlNode v, double min, double max = double.MaxValue)
        {
            var range = max == double.MaxValue
                ? $"a number of at least {min.ToString(CultureInfo.InvariantCulture)}"
                : $"a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}";
            var x = Number(v, range);
            if (x < min || x > max) throw Error(v, $"must be {range}, found {Text(v)}.");
            return x;
        }

        /// <summary>A value that cannot train at 0 or below (learning rate, alpha, epsilon).</summary>
        public double Positive(YamlNode v)
        {
            const string range = "a number greater than 0";
            var x = Number(v, range);
            if (x <= 0) throw Error(v, $"must be {range} (training with {Text(v)} would not learn or would divide by zero), found {Text(v)}.");
            return x;
        }

        private double Number(YamlNode v, string range)
        {
            var s = Scalar(v, range);
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
                throw Error(v, $"expected {range}, found '{s}'.");
            return x;
        }

        private static string Text(YamlNode v) => ((YamlScalarNode)v).Value ?? "";

        public bool Bool(YamlNode v)
        {
            var s = Scalar(v, "true or false");
            return s.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" => true,
                "false" or "no" or "off" => false,
                _ => throw Error(v, $"Expected true or false, found '{s}'."),
            };
        }

        /// <summary>
        /// true, false, or offload (Unsloth's <c>use_gradient_checkpointing="unsloth"</c> is read as offload):
        /// a value of its own code (FT3180), since a typo here silently costing GPU memory is the usual mistake.
        /// </summary>
        public string Checkpointing(YamlNode v)
        {
            var s = Scalar(v, "true, false or offload");
            return s.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" => "true",
                "false" or "no" or "off" => "false",
                "offload" or "unsloth" => "offload",
                _ => throw new FineTuneException("FT3180",
                    $"{Key}: expected true, false or offload, found '{s}'. offload checkpoints like true and also keeps the checkpoints (and an untied input embedding) in pinned host memory on the GPU.",
                    file, Line(v), Col(v)),
            };
        }

        /// <summary>
        /// A size in GiB as bytes: a number (<c>8</c>, <c>7.5</c>) or with the unit written (<c>8GiB</c>, <c>8 GiB</c>, axolotl's
        /// spelling). GB is refused rather than guessed at: it is 7% smaller than GiB, enough to turn a fitting run into FT3107.
        /// </summary>
        public long Gibibytes(YamlNode v)
        {
            const string expected = "a size in GiB greater than 0, e.g. 8 or 8GiB";
            var s = Scalar(v, expected).Trim();
            var number = s.EndsWith("GiB", StringComparison.OrdinalIgnoreCase) ? s[..^3].TrimEnd() : s;
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var gib) || !double.IsFinite(gib))
                throw Error(v, s.EndsWith("GB", StringComparison.OrdinalIgnoreCase)
                    ? $"expected {expected}, found '{s}': write the size in GiB (1 GiB = 1.074 GB), as nvidia-smi's MiB and the memory plan's GiB count."
                    : $"expected {expected}, found '{s}'.");
            if (gib <= 0 || gib > 1 << 20) throw Error(v, $"must be {expected}, found '{s}'.");
            return (long)Math.Round(gib * (1L << 30));
        }

        public string OneOf(YamlNode v, params string[] allowed)
        {
            var s = Scalar(v, string.Join(", ", allowed));
            return allowed.Contains(s) ? s : throw Error(v, $"Expected one of {string.Join(", ", allowed)}, found '{s}'.");
        }

        /// <summary>
        /// bfloat16, also as notebooks write it (torch.bfloat16, bf16). The engine computes in bf16, so
        /// float16 and float32 are refused rather than silently trained in another type.
        /// </summary>
        public string ComputeDtype(YamlNode v)
        {
            var s = Scalar(v, "bfloat16");
            return s is "bfloat16" or "torch.bfloat16" or "bf16"
                ? "bfloat16"
                : throw Error(v, $"Expected bfloat16 (the engine dequantizes 4-bit weights to bf16 for every product), found '{s}'.");
        }

        public IReadOnlyList<string> Modules(YamlNode v)
        {
            IEnumerable<YamlNode> items = v switch
            {
                YamlSequenceNode seq => seq.Children,
                YamlScalarNode { Value: "all-linear" } => TrainingConfig.AllProjections.Select(p => (YamlNode)new YamlScalarNode(p)),
                _ => throw Error(v, "Expected a list of module names, e.g. [q_proj, v_proj], or 'all-linear'."),
            };
            var result = new List<string>();
            foreach (var item in items)
            {
                var name = Scalar(item, "a module name");
                if (!TrainingConfig.AllProjections.Contains(name))
                    throw Error(item, $"Unknown target module '{name}'. Supported: {string.Join(", ", TrainingConfig.AllProjections)}.");
                if (!result.Contains(name)) result.Add(name);
            }
            if (result.Count == 0) throw Error(v, "target_modules is empty: at least one projection must get an adapter.");
            return result;
        }

        private FineTuneException Error(YamlNode v, string message) =>
            new("FT3005", $"{Key}: {char.ToLowerInvariant(message[0])}{message[1..]}", file, Line(v), Col(v));
    }
}
