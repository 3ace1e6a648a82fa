using System.Text.Json;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;

namespace FineTune.Tokenizers.Pipeline;

/// <summary>Numbers about one tokenized split, written to stats.json.</summary>
/// <param name="Examples">Number of examples.</param>
/// <param name="Tokens">Tokens over all examples (after truncation).</param>
/// <param name="TargetTokens">Tokens that count in the loss.</param>
/// <param name="Truncated">Examples cut to the maximum sequence length.</param>
/// <param name="MaxLength">Longest example in tokens (after truncation).</param>
/// <param name="LengthHistogram">(bucket upper bound, number of examples with length ≤ bound and &gt; the previous bound).</param>
public sealed record SplitStats(int Examples, long Tokens, long TargetTokens, int Truncated, int MaxLength, IReadOnlyList<(int UpperBound, int Count)> LengthHistogram);

/// <summary>
/// The FineTuneTokenize build step: formatted examples (train.jsonl, validation.jsonl) to token
/// ids and loss masks (train.bin, validation.bin) plus stats.json.
/// </summary>
/// <remarks>
/// Special tokens are recognised only outside each example's content spans and no special tokens
/// are added (the chat template already wrote BOS and turn markers as text). Token t is a target
/// when its input range overlaps an assistant span. Examples longer than the maximum are truncated
/// with warning FT2007 naming the dataset file and line the example came from (the formatted file
/// and line when the example records no source).
/// </remarks>
public static class TokenizeStep
{
    /// <summary>Runs the step; returns (train, validation) statistics.</summary>
    /// <param name="formattedDir">Folder with train.jsonl and optionally validation.jsonl.</param>
    /// <param name="tokenizerPath">tokenizer.json or the model folder holding it.</param>
    /// <param name="maxSeqLength">Maximum tokens per example.</param>
    /// <param name="outDir">Folder for train.bin, validation.bin and stats.json.</param>
    /// <param name="cancellationToken">Stops between examples.</param>
    /// <param name="projectDir">The folder the examples' source files are relative to; warnings name the full path when given.</param>
    public static (SplitStats Train, SplitStats Validation) Run(string formattedDir, string tokenizerPath, int maxSeqLength, string outDir, CancellationToken cancellationToken = default, string? projectDir = null)
    {
        if (maxSeqLength < 1)
            throw new FineTuneException("FT2008", $"--max-seq-length must be at least 1 (got {maxSeqLength}).");
        var trainFile = Path.Combine(formattedDir, "train.jsonl");
        if (!File.Exists(trainFile))
            throw new FineTuneException("FT2009", $"Formatted training data not found: {trainFile}. Run the format step first.", trainFile);
        var tokenizer = Tokenizer.Load(tokenizerPath);

        var (train, trainStats) = TokenizeFile(tokenizer, trainFile, maxSeqLength, projectDir, cancellationToken);
        var validationFile = Path.Combine(formattedDir, "validation.jsonl");
        var (validation, validationStats) = File.Exists(validationFile)
            ? TokenizeFile(tokenizer, validationFile, maxSeqLength, projectDir, cancellationToken)
            : ([], Summarize([], 0, maxSeqLength));

        Directory.CreateDirectory(outDir);
        TokenizedDatasetFile.Write(Path.Combine(outDir, "train.bin"), train);
        TokenizedDatasetFile.Write(Path.Combine(outDir, "validation.bin"), validation);
        AtomicFile.WriteAllText(Path.Combine(outDir, "stats.json"), StatsJson(trainStats, validationStats));
        return (trainStats, validationStats);
    }

    private static (List<TokenizedExample>, SplitStats) TokenizeFile(Tokenizer tokenizer, string file, int maxSeqLength, string? projectDir, CancellationToken cancellationToken)
    {
        var examples = FormattedDatasetFile.Read(file).ToList();
        // FormattedDatasetFile.Read skips empty lines; recover each example's line for warnings.
        var lines = new List<int>(examples.Count);
        var lineNo = 0;
        foreach (var line in File.ReadLines(file))
        {
            lineNo++;
            if (line.Length > 0) lines.Add(lineNo);
        }

        var results = new TokenizedExample[examples.Count];
        var fullLengths = new int[examples.Count];
        Parallel.For(0, examples.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            var (example, length) = TokenizeExample(tokenizer, examples[i], maxSeqLength);
            results[i] = example;
            fullLengths[i] = length;
        });

        var truncated = 0;
        for (var i = 0; i < results.Length; i++)
        {
            if (fullLengths[i] <= maxSeqLength) continue;
            truncated++;
            var message = $"Example has {fullLengths[i]} tokens and was truncated to max_seq_length {maxSeqLength}; the loss ignores what was cut. Shorten it, split it, or raise max_seq_length in lora.yaml.";
            if (examples[i].Source is { } source)
                CanonicalMessage.Warn("FT2007", $"{message} (formatted: {file} line {lines[i]})",
                    projectDir is null ? source.File : Path.GetFullPath(Path.Combine(projectDir, source.File)), source.Line, 1);
            else
                CanonicalMessage.Warn("FT2007", message, file, lines[i], 1);
        }
        return (results.ToList(), Summarize(results, truncated, maxSeqLength));
    }

    /// <summary>Tokenizes one formatted example; returns it truncated and its full length.</summary>
    public static (TokenizedExample Example, int FullLength) TokenizeExample(Tokenizer tokenizer, FormattedExample example, int maxSeqLength)
    {
        var encoding = tokenizer.Encode(example.Text, example.ContentSpans, addSpecialTokens: false);
        var n = Math.Min(encoding.Count, maxSeqLength);
        var ids = encoding.Ids.AsSpan(0, n).ToArray();
        var targets = new bool[n];
        for (var t = 0; t < n; t++)
        {
            var offset = encoding.Offsets[t];
            foreach (var span in example.TargetSpans)
            {
                if (!span.Overlaps(offset.Start, offset.End)) continue;
                targets[t] = true;
                break;
            }
        }
        return (new TokenizedExample(ids, targets), encoding.Count);
    }

    private static SplitStats Summarize(IReadOnlyList<TokenizedExample> examples, int truncated, int maxSeqLength)
    {
        var bounds = new List<int>();
        for (var b = 16; ; b *= 2)
        {
            bounds.Add(Math.Min(b, maxSeqLength));
            if (b >= maxSeqLength) break;
        }
        var counts = new int[bounds.Count];
        long tokens = 0, targets = 0;
        var max = 0;
        foreach (var e in examples)
        {
            tokens += e.Length;
            targets += e.TargetCount;
            max = Math.Max(max, e.Length);
            var k = bounds.FindIndex(b => e.Length <= b);
            counts[k < 0 ? counts.Length - 1 : k]++;
        }
        return new SplitStats(examples.Count, tokens, targets, truncated, max, bounds.Select((b, i) => (b, counts[i])).ToList());
    }

    private static string StatsJson(SplitStats train, SplitStats validation)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            Write(w, "train", train);
            Write(w, "validation", validation);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void Write(Utf8JsonWriter w, string name, SplitStats s)
    {
        w.WriteStartObject(name);
        w.WriteNumber("examples", s.Examples);
        w.WriteNumber("tokens", s.Tokens);
        w.WriteNumber("target_tokens", s.TargetTokens);
        w.WriteNumber("truncated", s.Truncated);
        w.WriteNumber("max_length", s.MaxLength);
        w.WriteStartArray("length_histogram");
        foreach (var (bound, count) in s.LengthHistogram)
        {
            w.WriteStartArray();
            w.WriteNumberValue(bound);
            w.WriteNumberValue(count);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
