using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;

namespace FineTune.Tokenizers.Pipeline;

/// <summary>
/// The tokenize step for preference data: <c>preference-train.jsonl</c> / <c>preference-validation.jsonl</c>
/// to <c>.bin</c> pairs, truncated by TRL's rules (DPOTrainer/ORPOTrainer <c>tokenize_row</c>): when the
/// prompt plus the longer completion exceeds <c>max_length</c>, the prompt is cut to
/// <c>max_prompt_length</c> (its end kept with <c>keep_end</c>, its start with <c>keep_start</c>); when
/// that is still too long, each completion is cut to <c>max_length - max_prompt_length</c>. Each
/// truncated pair is warned about (FT1072) at its formatted line.
/// </summary>
public static class PreferenceTokenizeStep
{
    /// <summary>TRL's truncation settings.</summary>
    public sealed record Limits(int MaxLength, int MaxPromptLength, bool KeepEnd);

    /// <summary>Tokenizes the preference files present in <paramref name="formattedDir"/>; returns (train pairs, validation pairs), (0, 0) when there are none.</summary>
    public static (int Train, int Validation) Run(string formattedDir, string tokenizerPath, Limits limits, string outDir, CancellationToken cancellationToken = default)
    {
        var trainFile = Path.Combine(formattedDir, PreferenceDatasetFiles.TrainJsonl);
        if (!File.Exists(trainFile)) return (0, 0);
        var tokenizer = Tokenizer.Load(tokenizerPath);
        var train = TokenizeFile(tokenizer, trainFile, limits, cancellationToken);
        var validationFile = Path.Combine(formattedDir, PreferenceDatasetFiles.ValidationJsonl);
        var validation = File.Exists(validationFile) ? TokenizeFile(tokenizer, validationFile, limits, cancellationToken) : [];
        Directory.CreateDirectory(outDir);
        PreferenceDatasetFiles.WriteTokenized(Path.Combine(outDir, PreferenceDatasetFiles.TrainBin), train);
        PreferenceDatasetFiles.WriteTokenized(Path.Combine(outDir, PreferenceDatasetFiles.ValidationBin), validation);
        return (train.Count, validation.Count);
    }

    private static List<TokenizedPair> TokenizeFile(Tokenizer tokenizer, string file, Limits limits, CancellationToken cancellationToken)
    {
        var pairs = PreferenceDatasetFiles.ReadFormatted(file).ToList();
        var results = new TokenizedPair[pairs.Count];
        var notes = new string?[pairs.Count];
        Parallel.For(0, pairs.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            var chosen = TokenizeStep.TokenizeExample(tokenizer, pairs[i].Pair.Chosen, int.MaxValue).Example;
            var rejected = TokenizeStep.TokenizeExample(tokenizer, pairs[i].Pair.Rejected, int.MaxValue).Example;
            (results[i], notes[i]) = Truncate(new TokenizedPair(chosen, rejected), limits);
        });
        for (var i = 0; i < pairs.Count; i++)
            if (notes[i] is { } note) CanonicalMessage.Warn("FT1072", note, file, pairs[i].Line, 1);
        return [.. results];
    }

    /// <summary>TRL's truncation of one pair; the note says what was cut, null when nothing was.</summary>
    public static (TokenizedPair Pair, string? Note) Truncate(TokenizedPair pair, Limits limits)
    {
        var (chosenPrompt, chosenCompletion) = Split(pair.Chosen);
        var (rejectedPrompt, rejectedCompletion) = Split(pair.Rejected);
        var longer = Math.Max(chosenCompletion.Ids.Length, rejectedCompletion.Ids.Length);
        var promptLength = chosenPrompt.Ids.Length;
        string? note = null;
        if (promptLength + longer > limits.MaxLength && promptLength > limits.MaxPromptLength)
        {
            chosenPrompt = CutPrompt(chosenPrompt, limits);
            rejectedPrompt = CutPrompt(rejectedPrompt, limits);
            note = $"The prompt has {promptLength} tokens and the longer completion {longer}, over max_length {limits.MaxLength}: the prompt was cut to max_prompt_length {limits.MaxPromptLength} (its {(limits.KeepEnd ? "end" : "start")} kept, truncation_mode {(limits.KeepEnd ? "keep_end" : "keep_start")})";
        }
        if (chosenPrompt.Ids.Length + longer > limits.MaxLength)
        {
            var keep = limits.MaxLength - limits.MaxPromptLength;
            chosenCompletion = Take(chosenCompletion, 0, Math.Min(keep, chosenCompletion.Ids.Length));
            rejectedCompletion = Take(rejectedCompletion, 0, Math.Min(keep, rejectedCompletion.Ids.Length));
            note = (note is null ? $"The prompt plus the longer completion ({promptLength} + {longer} tokens) is over max_length {limits.MaxLength}" : note + ", and still too long") +
                   $": the completions were cut to max_length - max_prompt_length = {keep} tokens";
        }
        var result = new TokenizedPair(Join(chosenPrompt, chosenCompletion), Join(rejectedPrompt, rejectedCompletion));
        return (result, note is null ? null : note + "; raise max_length or max_prompt_length in lora.yaml to keep pairs whole.");
    }

    /// <summary>The prompt is what precedes the first target token; the completion is the rest.</summary>
    private static (TokenizedExample Prompt, TokenizedExample Completion) Split(TokenizedExample e)
    {
        var first = Array.IndexOf(e.Targets, true);
        if (first < 0) first = e.Length;
        return (Take(e, 0, first), Take(e, first, e.Length - first));
    }

    private static TokenizedExample CutPrompt(TokenizedExample prompt, Limits limits) =>
        prompt.Length <= limits.MaxPromptLength ? prompt
        : limits.KeepEnd ? Take(prompt, prompt.Length - limits.MaxPromptLength, limits.MaxPromptLength)
        : Take(prompt, 0, limits.MaxPromptLength);

    private static TokenizedExample Take(TokenizedExample e, int start, int count) =>
        new(e.Ids.AsSpan(start, count).ToArray(), e.Targets.AsSpan(start, count).ToArray());

    private static TokenizedExample Join(TokenizedExample a, TokenizedExample b) => new([.. a.Ids, .. b.Ids], [.. a.Targets, .. b.Targets]);
}
