using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Reports;

/// <summary>One line of the train step's <c>metrics.jsonl</c>: a logging step, or an evaluation (<see cref="EvalLoss"/> set).</summary>
public sealed record MetricRecord(int Step, double? Epoch, double? Loss, double? LearningRate, double? GradNorm,
    long? Tokens, double? TokensPerSecond, double? ElapsedSeconds, double? EvalLoss)
{
    /// <summary>The line's other numbers: preference training's TRL metrics (<c>rewards/accuracies</c>, <c>eval_rewards/margins</c>, ...).</summary>
    public IReadOnlyDictionary<string, double> Extra { get; init; } = new Dictionary<string, double>();
}

/// <summary>Statistics of one split from the tokenize step's <c>stats.json</c>.</summary>
public sealed record SplitStatistics(long Examples, long Tokens, long TargetTokens, long Truncated, long MaxLength,
    IReadOnlyList<(long UpperBound, long Count)> LengthHistogram);

/// <summary>
/// A held-out prompt with the base model's and the fine-tuned model's answers (<c>samples.json</c>);
/// optionally the dataset's own reply and how each generated reply ended (e.g. <c>stop token</c>).
/// </summary>
public sealed record SampleGeneration(string Prompt, string Before, string After,
    string? Reference = null, string? BeforeEnd = null, string? AfterEnd = null);

/// <summary>
/// Everything a report shows, read from the pipeline's files. Malformed input is an FT7xxx error
/// at the offending file and line, never a half-rendered report. <see cref="Samples"/> is null when
/// no sample generations were made, and empty when there were no held-out prompts to make them for.
/// </summary>
public sealed record TrainingRun(
    IReadOnlyList<MetricRecord> Metrics,
    IReadOnlyList<KeyValuePair<string, string>> Summary,
    IReadOnlyDictionary<string, SplitStatistics> Splits,
    IReadOnlyList<KeyValuePair<string, object>> HyperParameters,
    IReadOnlyList<SampleGeneration>? Samples)
{
    /// <summary>The quality gate's measurements of the GGUF files (<c>quality.json</c>), or null when it did not run.</summary>
    public FineTune.Cli.Quality.QualityCheck? Quality { get; init; }

    /// <summary>Reads <c>metrics.jsonl</c> (one JSON object per line; blank lines are skipped).</summary>
    public static IReadOnlyList<MetricRecord> ReadMetrics(string path)
    {
        RequireFile(path, "the train step's metrics");
        var records = new List<MetricRecord>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var o = ParseObject(line, path, lineNumber);
            if (!o.TryGetProperty("step", out var step) || step.ValueKind != JsonValueKind.Number || !step.TryGetInt32(out var stepValue))
                throw new FineTuneException("FT7005", "A metrics line has no integer 'step'.", path, lineNumber);
            records.Add(new MetricRecord(stepValue, Number(o, "epoch", path, lineNumber), Number(o, "loss", path, lineNumber),
                Number(o, "learning_rate", path, lineNumber), Number(o, "grad_norm", path, lineNumber),
                (long?)Number(o, "tokens", path, lineNumber), Number(o, "tokens_per_second", path, lineNumber),
                Number(o, "elapsed_seconds", path, lineNumber), Number(o, "eval_loss", path, lineNumber))
            {
                Extra = o.EnumerateObject().Where(p => p.Name.Contains('/') && p.Value.ValueKind == JsonValueKind.Number)
                    .ToDictionary(p => p.Name, p => Number(o, p.Name, path, lineNumber)!.Value, StringComparer.Ordinal),
            });
        }
        return records;
    }

    /// <summary>Reads <c>train-summary.json</c> as label/value pairs (nested objects flattened as <c>a.b</c>).</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> ReadSummary(string path)
    {
        RequireFile(path, "the train step's summary");
        var root = ParseObject(File.ReadAllText(path), path, 1);
        var pairs = new List<KeyValuePair<string, string>>();
        Flatten(root, "", pairs);
        return pairs;
    }

    /// <summary>Reads the tokenize step's <c>stats.json</c>: one object per split.</summary>
    public static IReadOnlyDictionary<string, SplitStatistics> ReadStatistics(string path)
    {
        RequireFile(path, "the tokenize step's dataset statistics");
        var root = ParseObject(File.ReadAllText(path), path, 1);
        var splits = new SortedDictionary<string, SplitStatistics>(Comparer<string>.Create((a, b) => SplitOrder(a).CompareTo(SplitOrder(b)) is var c && c != 0 ? c : string.CompareOrdinal(a, b)));
        foreach (var split in root.EnumerateObject())
        {
            if (split.Value.ValueKind != JsonValueKind.Object)
                throw new FineTuneException("FT7005", $"stats.json: '{split.Name}' must be an object with examples, tokens, target_tokens, truncated, max_length, length_histogram.", path, 1);
            var s = split.Value;
            long Whole(string key) => (long)(Number(s, key, path, 1) ?? 0);
            var histogram = new List<(long, long)>();
            if (s.TryGetProperty("length_histogram", out var h))
            {
                if (h.ValueKind != JsonValueKind.Array) throw new FineTuneException("FT7005", $"stats.json: {split.Name}.length_histogram must be an array of [upper_bound, count] pairs.", path, 1);
                foreach (var bin in h.EnumerateArray())
                {
                    if (bin.ValueKind != JsonValueKind.Array || bin.GetArrayLength() != 2 || !bin[0].TryGetInt64(out var upper) || !bin[1].TryGetInt64(out var count))
                        throw new FineTuneException("FT7005", $"stats.json: {split.Name}.length_histogram must hold [upper_bound, count] pairs of integers.", path, 1);
                    histogram.Add((upper, count));
                }
            }
            splits[split.Name] = new SplitStatistics(Whole("examples"), Whole("tokens"), Whole("target_tokens"), Whole("truncated"), Whole("max_length"), histogram);
        }
        return splits;
    }

    /// <summary>
    /// Reads <c>samples.json</c>: <c>[{"prompt": ..., "before": ..., "after": ...}]</c>, each item
    /// optionally with <c>reference</c>, <c>before_end</c> and <c>after_end</c> strings.
    /// </summary>
    public static IReadOnlyList<SampleGeneration> ReadSamples(string path)
    {
        RequireFile(path, "the sample generations");
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllBytes(path)).RootElement; }
        catch (JsonException e) { throw new FineTuneException("FT7005", $"Invalid JSON: {e.Message}", path, (int)(e.LineNumber ?? 0) + 1); }
        if (root.ValueKind != JsonValueKind.Array)
            throw new FineTuneException("FT7005", "samples.json must be an array of {\"prompt\", \"before\", \"after\"} objects.", path, 1);
        var samples = new List<SampleGeneration>();
        foreach (var item in root.EnumerateArray())
        {
            string Text(string key) => Optional(key) ?? throw new FineTuneException("FT7005", $"samples.json: item {samples.Count + 1} needs a string '{key}'.", path, 1);
            string? Optional(string key)
            {
                if (item.ValueKind != JsonValueKind.Object)
                    throw new FineTuneException("FT7005", $"samples.json: item {samples.Count + 1} must be an object.", path, 1);
                if (!item.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                return v.ValueKind == JsonValueKind.String
                    ? v.GetString()
                    : throw new FineTuneException("FT7005", $"samples.json: item {samples.Count + 1}: '{key}' must be a string.", path, 1);
            }
            samples.Add(new SampleGeneration(Text("prompt"), Text("before"), Text("after"), Optional("reference"), Optional("before_end"), Optional("after_end")));
        }
        return samples;
    }

    private static int SplitOrder(string split) => split switch { "train" => 0, "validation" => 1, _ => 2 };

    private static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
            throw new FineTuneException("FT7006", $"{char.ToUpperInvariant(what[0])}{what[1..]} file '{path}' does not exist; run the step that writes it first.", path);
    }

    private static JsonElement ParseObject(string json, string path, int line)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new FineTuneException("FT7005", $"Invalid JSON: {e.Message}", path, line + (int)(e.LineNumber ?? 0)); }
        if (root.ValueKind != JsonValueKind.Object)
            throw new FineTuneException("FT7005", "Expected a JSON object.", path, line);
        return root;
    }

    private static double? Number(JsonElement o, string key, string path, int line)
    {
        if (!o.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && double.IsFinite(d)
            ? d
            : throw new FineTuneException("FT7005", $"'{key}' must be a finite number, found {v.GetRawText()}.", path, line);
    }

    private static void Flatten(JsonElement e, string prefix, List<KeyValuePair<string, string>> pairs)
    {
        foreach (var p in e.EnumerateObject())
        {
            var key = prefix + p.Name;
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.Object: Flatten(p.Value, key + ".", pairs); break;
                case JsonValueKind.String: pairs.Add(new(key, p.Value.GetString()!)); break;
                case JsonValueKind.Array: pairs.Add(new(key, string.Join(", ", p.Value.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString() : x.GetRawText())))); break;
                default: pairs.Add(new(key, p.Value.GetRawText())); break;
            }
        }
    }
}
