using System.Globalization;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Data.Formats;
using FineTune.Data.Readers;
using FineTune.Data.Templates;

namespace FineTune.Data;

/// <summary>The formatted examples of a project, split into training and validation data, with lint findings.</summary>
public sealed record FormattedDataset(IReadOnlyList<FormattedExample> Train, IReadOnlyList<FormattedExample> Validation, IReadOnlyList<DatasetWarning> Warnings)
{
    /// <summary>Preference pairs for training (<c>Format="preference"</c> items); empty when the project has none.</summary>
    public IReadOnlyList<FormattedPair> PreferenceTrain { get; init; } = [];
    /// <summary>Preference pairs for validation.</summary>
    public IReadOnlyList<FormattedPair> PreferenceValidation { get; init; } = [];

    /// <summary>The file names <see cref="DatasetFormatter.Write"/> uses.</summary>
    public const string TrainFileName = "train.jsonl", ValidationFileName = "validation.jsonl";
}

/// <summary>
/// FineTuneFormat: reads every dataset item, standardises rows to conversations, renders them with
/// the chat template and splits them into train and validation examples. Every row becomes an
/// example or an error; none is dropped.
/// </summary>
public static class DatasetFormatter
{
    /// <summary>
    /// Formats a request, loading lora.yaml (or its defaults) for the seed, split and loss mask; with
    /// <paramref name="tokens"/> (the base model's tokenizer) the template is bound and checked against it.
    /// </summary>
    public static FormattedDataset Format(FormatRequest request, TemplateTokens? tokens = null)
    {
        var config = request.LoraConfig is null ? new TrainingConfig() : TrainingConfigLoader.Load(request.LoraConfig);
        var template = tokens is null
            ? ChatTemplates.Resolve(request.ChatTemplate, request.ProjectDir)
            : ChatTemplates.Resolve(request.ChatTemplate, request.ProjectDir, tokens);
        return Format(request.Datasets, template, config);
    }

    /// <summary>Formats datasets with a resolved template and training config.</summary>
    public static FormattedDataset Format(IReadOnlyList<DatasetItem> datasets, ChatTemplate template, TrainingConfig config)
    {
        var warnings = new List<DatasetWarning>();
        var train = new List<(FormattedExample, Conversation)>();
        var validation = new List<(FormattedExample, Conversation)>();
        var pairs = new List<FormattedPair>();
        var pairsValidation = new List<FormattedPair>();
        foreach (var item in datasets)
        {
            var isValidation = ParseSplit(item);
            if (IsPreference(item))
            {
                foreach (var row in ReadPreferenceRows(item))
                {
                    warnings.AddRange(DatasetLint.EmptyReplies(row.ChosenConversation));
                    warnings.AddRange(DatasetLint.EmptyReplies(row.RejectedConversation));
                    (isValidation ? pairsValidation : pairs).Add(RenderPair(row, template));
                }
                continue;
            }
            var conversations = ReadConversations(item, config.Seed, warnings);
            var sourceFile = item.Path.Replace('\\', '/');
            foreach (var c in conversations)
            {
                warnings.AddRange(DatasetLint.EmptyReplies(c));
                var example = template.Render(c, lossOnReplies: config.TrainOnResponsesOnly);
                if (c.SourceLine > 0) example = example with { Source = new ExampleSource(sourceFile, c.SourceLine) };
                (isValidation ? validation : train).Add((example, c));
            }
        }

        // Explicit validation items take precedence over a random split of the training data.
        if (validation.Count == 0 && config.ValidationSplit > 0 && train.Count > 1)
        {
            var take = Math.Clamp((int)Math.Round(train.Count * config.ValidationSplit, MidpointRounding.AwayFromZero), 1, train.Count - 1);
            var chosen = SeededShuffle.Permutation(train.Count, config.Seed).Take(take).ToHashSet();
            validation = [.. train.Where((_, i) => chosen.Contains(i))];
            train = [.. train.Where((_, i) => !chosen.Contains(i))];
        }
        if (pairsValidation.Count == 0 && config.ValidationSplit > 0 && pairs.Count > 1)
        {
            var take = Math.Clamp((int)Math.Round(pairs.Count * config.ValidationSplit, MidpointRounding.AwayFromZero), 1, pairs.Count - 1);
            var held = SeededShuffle.Permutation(pairs.Count, config.Seed).Take(take).ToHashSet();
            pairsValidation = [.. pairs.Where((_, i) => held.Contains(i))];
            pairs = [.. pairs.Where((_, i) => !held.Contains(i))];
        }
        if (config.IsPreference && pairs.Count == 0)
            throw new FineTuneException(DataErrors.BadPreferenceItem,
                $"lora.yaml sets trainer: {config.Trainer}, which trains on preference pairs, but no FineTuneDataset item has Format=\"preference\" training rows.");
        if (!config.IsPreference && pairs.Count > 0)
            throw new FineTuneException(DataErrors.BadPreferenceItem,
                "The project has Format=\"preference\" datasets but lora.yaml trains with trainer: sft; set trainer: dpo or orpo (SFT on the other datasets runs first).",
                datasets.First(IsPreference).FullPath);
        if (train.Count == 0 && pairs.Count > 0)
            return new FormattedDataset([], [], warnings) { PreferenceTrain = pairs, PreferenceValidation = pairsValidation };
        if (train.Count == 0)
            throw new FineTuneException(DataErrors.NoTrainingExamples, datasets.Count == 0
                ? "No FineTuneDataset items: add at least one dataset to the project."
                : "Every dataset is Split=\"validation\"; at least one must hold training data.");

        warnings.AddRange(DatasetLint.Duplicates(train.Concat(validation)));
        return new FormattedDataset(train.Select(t => t.Item1).ToList(), validation.Select(v => v.Item1).ToList(), warnings)
        {
            PreferenceTrain = pairs,
            PreferenceValidation = pairsValidation,
        };
    }

    /// <summary>
    /// Renders a preference row as TRL does: prompt + completion through the chat template, the loss
    /// only on what follows the prompt with its generation prompt (the completion and its end-of-turn).
    /// </summary>
    public static FormattedPair RenderPair(PreferenceRow row, ChatTemplate template)
    {
        var prompt = template.RenderPrompt(new Conversation(row.Prompt, row.SourceFile, row.SourceLine)).Text.Length;
        FormattedExample Completion(Conversation c)
        {
            var e = template.Render(c, lossOnReplies: true);
            return e with { AssistantSpans = [.. e.AssistantSpans.Where(s => s.End > prompt).Select(s => new TextSpan(Math.Max(s.Start, prompt), s.End))] };
        }
        return new FormattedPair(Completion(row.ChosenConversation), Completion(row.RejectedConversation));
    }

    private static bool IsPreference(DatasetItem item) =>
        item.Get("Format") is { } f && DatasetFormats.Parse(f, item.FullPath) == DatasetFormat.Preference;

    private static List<PreferenceRow> ReadPreferenceRows(DatasetItem item)
    {
        if (item.Get("ConversationExtension") is not null)
            throw new FineTuneException(DataErrors.BadPreferenceItem, "ConversationExtension applies to chat data; a preference dataset's rows are pairs and cannot be merged.", item.FullPath);
        var system = item.Get("System");
        return ReadRows(item.FullPath, item.Get("Sheet"), row => PreferenceFormat.Convert(row, system));
    }

    /// <summary>Writes <c>train.jsonl</c> and <c>validation.jsonl</c> (possibly empty) atomically into <paramref name="outDir"/>.</summary>
    public static void Write(FormattedDataset dataset, string outDir)
    {
        Directory.CreateDirectory(outDir);
        FormattedDatasetFile.Write(Path.Combine(outDir, FormattedDataset.TrainFileName), dataset.Train);
        FormattedDatasetFile.Write(Path.Combine(outDir, FormattedDataset.ValidationFileName), dataset.Validation);
        // Only projects with preference data get these files, so an SFT project's outputs (and cache keys) stay as they were.
        if (dataset.PreferenceTrain.Count == 0) return;
        PreferenceDatasetFiles.WriteFormatted(Path.Combine(outDir, PreferenceDatasetFiles.TrainJsonl), dataset.PreferenceTrain);
        PreferenceDatasetFiles.WriteFormatted(Path.Combine(outDir, PreferenceDatasetFiles.ValidationJsonl), dataset.PreferenceValidation);
    }

    private static IReadOnlyList<Conversation> ReadConversations(DatasetItem item, int seed, List<DatasetWarning> warnings)
    {
        var file = item.FullPath;
        var extension = ParseExtension(item);
        var system = item.Get("System");
        DatasetFormat? format = item.Get("Format") is { } f ? DatasetFormats.Parse(f, file) : null;
        ColumnsFormat? columns = null;
        if (format is null && (item.Get("Prompt") is not null || item.Get("Response") is not null)) format = DatasetFormat.Columns;
        if (format == DatasetFormat.Columns) columns = new ColumnsFormat(item.Get("Prompt"), item.Get("Response"), file);

        var conversations = ReadRows(file, item.Get("Sheet"), row =>
        {
            format ??= RowConverter.Infer(row);
            var c = columns is not null ? columns.Convert(row) : RowConverter.Convert(row, format.Value);
            if (system is not null) c = c.WithDefaultSystem(system);
            Validate(c, row);
            return c;
        });
        if (columns is not null) warnings.AddRange(DatasetLint.ClassImbalance(columns.Outputs, file));

        if (extension > 1)
        {
            if (format == DatasetFormat.Text)
                throw new FineTuneException(DataErrors.BadConversationExtension, "ConversationExtension applies to chat data; a text dataset has no turns to merge.", file);
            return ConversationExtension.Extend(conversations, extension, seed);
        }
        return conversations;
    }

    /// <summary>The most row errors one file reports; a file with more is most likely of another format.</summary>
    public const int MaxRowErrors = 20;

    /// <summary>
    /// Every row of a file through <paramref name="convert"/>. A row's own mistake is kept and the next row
    /// read, and so is a <c>.jsonl</c> line that is not a JSON object (the reader reports it and reads on), so
    /// one build lists the file's bad rows (up to <see cref="MaxRowErrors"/>); any other mistake (a CSV's or a
    /// <c>.json</c> document's syntax, the format, a column the whole table lacks) ends the file with what was
    /// found so far.
    /// </summary>
    private static List<T> ReadRows<T>(string file, string? sheet, Func<DatasetRow, T> convert)
    {
        var results = new List<T>();
        var errors = new List<FineTuneException>();
        using var rows = DatasetReader.Read(file, sheet, badLine: e => { if (errors.Count < MaxRowErrors) errors.Add(e); }).GetEnumerator();
        while (errors.Count < MaxRowErrors)
        {
            try
            {
                if (!rows.MoveNext() || errors.Count == MaxRowErrors) break;
                results.Add(convert(rows.Current));
            }
            catch (FineTuneException e)
            {
                errors.Add(e);
                if (!IsRowMistake(e.Code)) break;
            }
        }
        FineTuneErrors.ThrowIfAny(errors);
        return results;
    }

    /// <summary>Mistakes of one row's content, after which the next row can still be read and checked.</summary>
    private static bool IsRowMistake(string code) =>
        code is DataErrors.MissingField or DataErrors.WrongType or DataErrors.UnknownRole or DataErrors.BadConversation
            or DataErrors.BadPreferenceRow;

    private static void Validate(Conversation c, DatasetRow row)
    {
        if (c.IsRawText) return;
        var firstTurn = c.Messages.FirstOrDefault(m => m.Role != Role.System);
        if (firstTurn is null || !c.Messages.Any(m => m.Role == Role.Assistant))
            throw new FineTuneException(DataErrors.BadConversation, $"{row.SheetPrefix}Conversation has no assistant reply; every example needs at least one to train on.", row.File, row.Line, 1);
        if (firstTurn.Role == Role.Assistant)
            throw new FineTuneException(DataErrors.BadConversation, $"{row.SheetPrefix}Conversation starts with an assistant reply; the first turn after the system prompt must be a user message.", row.File, row.Line, 1);
    }

    private static bool ParseSplit(DatasetItem item) => item.Get("Split")?.Trim().ToLowerInvariant() switch
    {
        null or "train" => false,
        "validation" => true,
        var other => throw new FineTuneException(DataErrors.BadSplit, $"Split=\"{other}\" is not valid; use train (the default) or validation.", item.FullPath),
    };

    private static int ParseExtension(DatasetItem item)
    {
        if (item.Get("ConversationExtension") is not { } value) return 1;
        return int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? n
            : throw new FineTuneException(DataErrors.BadConversationExtension,
                $"ConversationExtension=\"{value}\" must be a whole number of at least 1 (how many single-turn rows to merge into one conversation).", item.FullPath);
    }
}
