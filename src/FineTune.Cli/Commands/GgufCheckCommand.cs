using System.CommandLine;
using System.Globalization;
using FineTune.Cli.Chat;
using FineTune.Cli.Quality;
using FineTune.Cli.Samples;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune gguf-check</c>: the quality gate after export. Each GGUF's own weights against the
/// trained model on the held-out split — perplexity and greedy replies — written to
/// <c>quality.json</c> for the report and the manifest; a gap above the limit fails (FT4042).
/// </summary>
internal static class GgufCheckCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base-model") { Description = "Base model folder in Hugging Face layout (config.json, *.safetensors, tokenizer.json).", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "The trained LoRA adapter folder the GGUFs were merged from.", Required = true };
        var data = new Option<string>("--data") { Description = "Output folder of 'finetune format' (validation.jsonl, train.jsonl: the held-out prompts).", Required = true };
        var tokens = new Option<string>("--tokens") { Description = "Output folder of 'finetune tokenize' (validation.bin, train.bin: the tokens the loss is measured on).", Required = true };
        var gguf = new Option<string[]>("--gguf") { Description = "A GGUF file to check (repeatable).", Required = true, AllowMultipleArgumentsPerToken = false };
        var template = new Option<string?>("--chat-template") { Description = "Chat template the data was formatted with (its stop tokens end a reply; default: detected from the tokenizer)." };
        var count = new Option<int>("--count") { Description = "How many held-out prompts to answer (the first ones).", DefaultValueFactory = _ => 3 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per reply; a reply that reaches it did not stop.", DefaultValueFactory = _ => 48 };
        var maxLoss = new Option<string?>("--max-quantization-loss") { Description = "Largest allowed perplexity increase of a GGUF over the trained model, e.g. 0.05 (5%); above it the check fails. Default: a warning above 10%." };
        var samples = new Option<string?>("--samples") { Description = "samples.json of 'finetune samples' (same base model, adapter, template and --max-tokens): the trained model's replies it holds for the same prompts are taken from it, not generated again." };
        var output = new Option<string>("--out") { Description = "Where to write quality.json.", Required = true };
        var command = new Command("gguf-check", "Measure each GGUF against the trained model (perplexity on held-out data, greedy replies, stops) and write quality.json.")
        {
            baseModel, adapter, data, tokens, gguf, template, count, maxTokens, maxLoss, samples, output,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            if (parse.GetValue(count) < 0) throw new FineTuneException("FT7020", "--count must be 0 or more.");
            if (parse.GetValue(maxTokens) < 1) throw new FineTuneException("FT7020", "--max-tokens must be at least 1.");
            var limit = ParseLimit(parse.GetValue(maxLoss));
            var modelPath = parse.GetValue(baseModel)!;
            ChatModelLoader.CheckModelPath(modelPath);
            var adapterPath = parse.GetValue(adapter)!;
            if (!Directory.Exists(adapterPath)) throw new FineTuneException("FT7008", $"Adapter folder '{adapterPath}' does not exist.", adapterPath);
            foreach (var file in parse.GetValue(gguf)!)
                if (!File.Exists(file)) throw new FineTuneException("FT4006", $"GGUF file '{file}' does not exist.", file);

            // The validation split; a project without one is measured on its training examples (said in the report).
            var (split, examples, formatted) = Split(parse.GetValue(tokens)!, parse.GetValue(data)!);
            var prompts = FormattedDatasetFile.Read(formatted).Select(HeldOutPrompt.From).OfType<HeldOutPrompt>().Take(parse.GetValue(count)).ToList();

            var config = ModelConfig.Load(modelPath);
            var lora = LoraAdapter.Load(adapterPath, config);
            // Before anything large is loaded: a model too big for this host is refused here (FT4060), not by the out-of-memory killer.
            QuantizationGate.CheckMemory(config, examples, lora.Settings.Rank);
            var known = parse.GetValue(samples) is { } samplesPath && File.Exists(samplesPath)
                ? SampleReplies.Match(samplesPath, prompts, parse.GetValue(maxTokens))
                : new GateReply?[prompts.Count];

            var tokenizer = Tokenizer.Load(modelPath);
            var chatTemplate = ChatModelLoader.ResolveTemplate(parse.GetValue(template), tokenizer, modelPath);
            var check = new QuantizationGate(tokenizer, chatTemplate, parse.GetValue(maxTokens))
                .Run(split, config, () => LlamaWeights.Load(modelPath), lora, examples, prompts, known, parse.GetValue(gguf)!, Console.WriteLine, cancellationToken);
            check.Write(parse.GetValue(output)!);

            var findings = QualityVerdict.Judge(check, limit);
            foreach (var f in findings) Console.Out.WriteLine(CanonicalMessage.Format(f.Severity, f.Code, f.Message));
            return Task.FromResult(findings.Any(f => f.Severity == Severity.Error) ? 1 : 0);
        });
        return command;
    }

    /// <summary>FineTuneMaxQuantizationLoss: empty means the default warning; otherwise a number of 0 or more (FT4045).</summary>
    internal static double? ParseLimit(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 && double.IsFinite(v)) return v;
        throw new FineTuneException("FT4045",
            $"FineTuneMaxQuantizationLoss '{text}' is not a number of 0 or more; write the allowed perplexity increase as a fraction, e.g. 0.05 for 5%.");
    }

    private static (string Split, IReadOnlyList<TokenizedExample> Examples, string Formatted) Split(string tokensDir, string dataDir)
    {
        var validation = Path.Combine(tokensDir, "validation.bin");
        var examples = File.Exists(validation) ? TokenizedDatasetFile.Read(validation) : [];
        if (examples.Count > 0) return ("validation", examples, Existing(Path.Combine(dataDir, "validation.jsonl")));
        var train = Path.Combine(tokensDir, "train.bin");
        if (!File.Exists(train)) throw new FineTuneException("FT7020", $"'{tokensDir}' has neither validation.bin nor train.bin; pass the output folder of 'finetune tokenize'.", tokensDir);
        return ("train", TokenizedDatasetFile.Read(train), Existing(Path.Combine(dataDir, "train.jsonl")));
    }

    private static string Existing(string path) =>
        File.Exists(path) ? path : throw new FineTuneException("FT7020", $"'{path}' does not exist; pass the output folder of 'finetune format' as --data.", path);
}
