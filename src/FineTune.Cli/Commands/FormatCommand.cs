using System.CommandLine;
using FineTune.Core.Diagnostics;
using FineTune.Data;

using FineTune.Cli.Templates;
using FineTune.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune format</c>: datasets + chat template -> <c>train.jsonl</c> and <c>validation.jsonl</c>
/// (rendered text with assistant spans). The build passes <c>--request request.json</c>; people can
/// name a dataset, its format and the template directly instead. Lint findings are canonical
/// warnings on stdout; bad input is an FT1xxx error naming the file and line.
/// </summary>
internal static class FormatCommand
{
    public static Command Create()
    {
        var request = new Option<FileInfo?>("--request") { Description = "request.json written by the FineTuneFormat build step." };
        var datasets = new Option<FileInfo[]>("--dataset") { Description = "A dataset file: .jsonl, .json, .csv, .tsv or .xlsx (repeatable)." };
        var format = new Option<string?>("--format") { Description = "alpaca, sharegpt, messages, text or columns (inferred from the fields when omitted)." };
        var template = new Option<string?>("--chat-template") { Description = "model (the base model's own Jinja template, the default with --tokenizer), a built-in template (llama-3, chatml, qwen-2.5, mistral, gemma, phi-3, alpaca, vicuna, zephyr), or a template file (.jinja or {SYSTEM}/{INPUT}/{OUTPUT})." };
        var system = new Option<string?>("--system") { Description = "System prompt for rows that have none." };
        var prompt = new Option<string?>("--prompt") { Description = "columns format: prompt template with {column} fields and [[optional]] parts." };
        var output = new Option<string?>("--response") { Description = "columns format: reply template, e.g. {Survived}." };
        var sheet = new Option<string?>("--sheet") { Description = ".xlsx: the sheet to read (all sheets when omitted)." };
        var extension = new Option<int?>("--conversation-extension") { Description = "Merge N random single-turn rows into one multi-turn conversation." };
        var loraConfig = new Option<FileInfo?>("--lora-config") { Description = "lora.yaml: seed, validation_split, train_on_responses_only." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "The base model folder (or its tokenizer.json): the template is bound to and checked against its tokens." };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for train.jsonl and validation.jsonl.", Required = true };

        var command = new Command("format", "Render datasets with a chat template into train.jsonl / validation.jsonl.")
        {
            request, datasets, format, template, system, prompt, output, sheet, extension, loraConfig, tokenizer, outDir,
        };
        command.SetAction(parse =>
        {
            // System.CommandLine's default exception handler would print "Unhandled exception: ..."
            // before the canonical text, which MSBuild then cannot parse; report it here instead.
            try
            {
                return Run(parse);
            }
            catch (FineTuneException e)
            {
                Console.Error.WriteLine(e.ToCanonicalString());
                return CliApp.InputError;
            }
        });
        return command;

        int Run(ParseResult parse)
        {
            FormatRequest formatRequest;
            if (parse.GetValue(request) is { } requestFile)
            {
                formatRequest = FormatRequest.Load(requestFile.FullName);
            }
            else
            {
                var files = parse.GetValue(datasets) ?? [];
                // Without --chat-template the base model's own template is used, as in a project without a ChatTemplate item.
                var chatTemplate = parse.GetValue(template) ?? (parse.GetValue(tokenizer) is not null ? "model" : null);
                if (files.Length == 0 || chatTemplate is null)
                    throw new FineTuneException("FT7101", "finetune format needs --request <request.json>, or --dataset <file> and --chat-template <name|file> (or --tokenizer <model folder> for the model's own template).");
                var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                void Set(string key, string? value) { if (!string.IsNullOrEmpty(value)) metadata[key] = value; }
                Set("Format", parse.GetValue(format));
                Set("System", parse.GetValue(system));
                Set("Prompt", parse.GetValue(prompt));
                Set("Response", parse.GetValue(output));
                Set("Sheet", parse.GetValue(sheet));
                Set("ConversationExtension", parse.GetValue(extension)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
                formatRequest = new FormatRequest(Environment.CurrentDirectory, chatTemplate, parse.GetValue(loraConfig)?.FullName,
                    files.Select(f => new DatasetItem(f.ToString(), f.FullName, metadata)).ToList());
            }

            var tokens = parse.GetValue(tokenizer) is { } tokenizerPath
                ? ModelChatTemplate.Tokens(Tokenizer.Load(tokenizerPath), tokenizerPath)
                : null;
            var result = DatasetFormatter.Format(formatRequest, tokens);
            foreach (var w in result.Warnings) CanonicalMessage.Warn(w.Code, w.Message, w.File, w.Line);
            var dir = parse.GetValue(outDir)!.FullName;
            DatasetFormatter.Write(result, dir);
            Console.WriteLine($"finetune format: {result.Train.Count} training and {result.Validation.Count} validation examples -> {dir}");
            return CliApp.Success;
        }
    }
}
