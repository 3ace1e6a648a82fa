using System.CommandLine;
using System.Text;
using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Tokenizers;
using FineTune.Tokenizers.Pipeline;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune tokenize</c>, two modes:
/// <c>--formatted DIR --tokenizer MODEL --max-seq-length N --out DIR</c> (the build's tokenize step) and
/// <c>--tokenizer tokenizer.json --input cases.json [--add-special-tokens]</c> (prints the ids of a
/// JSON array of strings as one JSON array of id arrays, to compare with other tokenizers).
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "tokenizer.json, or a model folder containing it.", Required = true };
        var input = new Option<string?>("--input") { Description = "A JSON array of strings to encode; prints a JSON array of id arrays." };
        var addSpecial = new Option<bool>("--add-special-tokens") { Description = "With --input: apply the tokenizer's post-processor template (e.g. BOS)." };
        var formatted = new Option<string?>("--formatted") { Description = "Folder with train.jsonl / validation.jsonl from `finetune format`." };
        var maxSeqLength = new Option<int?>("--max-seq-length") { Description = "With --formatted: maximum tokens per example; longer ones are truncated with a warning." };
        var output = new Option<string?>("--out") { Description = "With --formatted: folder for train.bin, validation.bin and stats.json." };
        var config = new Option<string?>("--config") { Description = "With --formatted: lora.yaml to take max_seq_length from (instead of --max-seq-length)." };
        var projectDir = new Option<string?>("--project-dir") { Description = "With --formatted: the project folder the datasets are relative to, so warnings name their full path." };

        var command = new Command("tokenize", "Tokenize formatted datasets into ids and loss masks, or encode test strings.");
        command.Options.Add(tokenizer);
        command.Options.Add(input);
        command.Options.Add(addSpecial);
        command.Options.Add(formatted);
        command.Options.Add(maxSeqLength);
        command.Options.Add(output);
        command.Options.Add(config);
        command.Options.Add(projectDir);
        command.SetAction((parse, cancellationToken) =>
        {
            var tokenizerPath = parse.GetValue(tokenizer)!;
            if (parse.GetValue(input) is { } inputPath)
                return Task.FromResult(EncodeCases(tokenizerPath, inputPath, parse.GetValue(addSpecial)));
            var max = parse.GetValue(maxSeqLength)
                      ?? (parse.GetValue(config) is { } configPath ? FineTune.Core.Config.TrainingConfigLoader.Load(configPath).MaxSeqLength : (int?)null);
            if (parse.GetValue(formatted) is { } formattedDir && max is { } maxTokens && parse.GetValue(output) is { } outDir)
            {
                var (train, validation) = TokenizeStep.Run(formattedDir, tokenizerPath, maxTokens, outDir, cancellationToken, parse.GetValue(projectDir));
                if (parse.GetValue(config) is { } preferenceConfig)
                {
                    var c = FineTune.Core.Config.TrainingConfigLoader.Load(preferenceConfig);
                    var limits = new PreferenceTokenizeStep.Limits(c.MaxLength, c.MaxPromptLength, c.TruncationMode == "keep_end");
                    var (pairs, validationPairs) = PreferenceTokenizeStep.Run(formattedDir, tokenizerPath, limits, outDir, cancellationToken);
                    if (pairs > 0) Console.WriteLine($"tokenize: preference train {pairs} pairs, validation {validationPairs} pairs -> {outDir}");
                }
                Console.WriteLine($"tokenize: train {train.Examples} examples, {train.Tokens} tokens ({train.TargetTokens} targets, {train.Truncated} truncated); " +
                                  $"validation {validation.Examples} examples, {validation.Tokens} tokens -> {outDir}");
                return Task.FromResult(CliApp.Success);
            }
            Console.Error.WriteLine("finetune tokenize: give either --input <cases.json>, or --formatted <dir> (--max-seq-length <n> | --config <lora.yaml>) --out <dir>.");
            return Task.FromResult(CliApp.UsageError);
        });
        return command;
    }

    private static int EncodeCases(string tokenizerPath, string inputPath, bool addSpecialTokens)
    {
        if (!File.Exists(inputPath))
            throw new FineTuneException("FT2010", $"Input file not found: {inputPath}.", inputPath);
        List<string> cases;
        try
        {
            cases = JsonSerializer.Deserialize<List<string>>(File.ReadAllText(inputPath, Encoding.UTF8))
                    ?? throw new JsonException("the document is null");
        }
        catch (JsonException e)
        {
            throw new FineTuneException("FT2010", $"Input must be a JSON array of strings ({e.Message}).", inputPath, (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1);
        }
        var tok = Tokenizer.Load(tokenizerPath);
        var sb = new StringBuilder("[");
        for (var i = 0; i < cases.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append('[').AppendJoin(',', tok.Encode(cases[i], addSpecialTokens).Ids).Append(']');
        }
        Console.Out.WriteLine(sb.Append(']').ToString());
        return CliApp.Success;
    }
}
