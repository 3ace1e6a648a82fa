using System.CommandLine;
using FineTune.Cli.Chat;
using FineTune.Cli.Samples;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Inference;
using FineTune.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune samples</c>: greedy replies of the base model and of the fine-tuned model to the
/// first held-out (validation) prompts, written to <c>samples.json</c> for <c>finetune report</c>.
/// </summary>
internal static class SamplesCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base-model") { Description = "Base model folder in Hugging Face layout (config.json, *.safetensors, tokenizer.json).", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "The trained LoRA adapter folder (adapter_config.json, adapter_model.safetensors).", Required = true };
        var data = new Option<string>("--data") { Description = "Output folder of 'finetune format'; prompts come from its validation.jsonl.", Required = true };
        var template = new Option<string?>("--chat-template") { Description = "Chat template the data was formatted with (its stop tokens end a reply; default: detected from the tokenizer)." };
        var count = new Option<int>("--count") { Description = "How many held-out prompts to answer (the first ones of validation.jsonl).", DefaultValueFactory = _ => 3 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per reply.", DefaultValueFactory = _ => 48 };
        var output = new Option<string>("--out") { Description = "Where to write samples.json.", Required = true };
        var command = new Command("samples", "Answer held-out prompts with the base and the fine-tuned model (greedy) and write samples.json for 'finetune report'.")
        {
            baseModel, adapter, data, template, count, maxTokens, output,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            if (parse.GetValue(count) < 0) throw new FineTuneException("FT7011", "--count must be 0 or more.");
            if (parse.GetValue(maxTokens) < 1) throw new FineTuneException("FT7011", "--max-tokens must be at least 1.");
            var modelPath = parse.GetValue(baseModel)!;
            ChatModelLoader.CheckModelPath(modelPath);
            var adapterPath = parse.GetValue(adapter)!;
            if (!Directory.Exists(adapterPath)) throw new FineTuneException("FT7008", $"Adapter folder '{adapterPath}' does not exist.", adapterPath);
            var validation = Path.Combine(parse.GetValue(data)!, "validation.jsonl");
            if (!File.Exists(validation))
                throw new FineTuneException("FT7012", $"'{parse.GetValue(data)}' has no validation.jsonl; pass the output folder of 'finetune format'.", validation);

            var examples = FormattedDatasetFile.Read(validation).ToList();
            var prompts = examples.Select(HeldOutPrompt.From).OfType<HeldOutPrompt>().Take(parse.GetValue(count)).ToList();
            var outPath = parse.GetValue(output)!;
            if (prompts.Count == 0)
            {
                // No held-out data: the report says so rather than showing training prompts as if unseen.
                SampleSet.Write(outPath, [], parse.GetValue(maxTokens));
                Console.WriteLine($"samples: no held-out prompts: {HeldOutPrompt.WhyNone(examples, "validation")} -> {outPath}");
                return Task.FromResult(0);
            }
            var tokenizer = Tokenizer.Load(modelPath);
            var chatTemplate = ChatModelLoader.ResolveTemplate(parse.GetValue(template), tokenizer, modelPath);
            var decoder = LlamaDecoder.Load(modelPath, adapterPath);
            var results = new SampleGenerator(decoder, tokenizer, chatTemplate, parse.GetValue(maxTokens)).Run(prompts, cancellationToken);
            SampleSet.Write(outPath, results, parse.GetValue(maxTokens));
            int Stopped(Func<SampleResult, Reply> reply) => results.Count(r => reply(r).Reason is StopReason.StopToken or StopReason.StopString);
            Console.WriteLine($"samples: {results.Count} held-out prompts; ended at a stop token: before {Stopped(r => r.Before)}/{results.Count}, after {Stopped(r => r.After)}/{results.Count} -> {outPath}");
            return Task.FromResult(0);
        });
        return command;
    }
}
