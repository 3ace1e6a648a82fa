using System.CommandLine;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Gguf.Export;
using FineTune.Gguf.Quantization;

using FineTune.Cli.Templates;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune export --base-model &lt;dir&gt; [--adapter &lt;dir&gt;] --type &lt;T&gt; --name &lt;n&gt; --version &lt;v&gt;
/// --chat-template &lt;name|file&gt; --out &lt;file.gguf&gt;</c>: merge, convert and quantize to GGUF.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var baseModel = new Option<DirectoryInfo>("--base-model") { Description = "Hugging Face model folder (config.json, safetensors, tokenizer.json).", Required = true };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "PEFT LoRA adapter folder to merge into the weights." };
        var type = new Option<string>("--type") { Description = $"File type: {string.Join(", ", FileTypes.Names)}.", Required = true };
        var name = new Option<string>("--name") { Description = "Model name (general.name).", Required = true };
        var version = new Option<string>("--version") { Description = "Model version (general.version).", Required = true };
        var template = new Option<string?>("--chat-template") { Description = "Built-in chat template name or template file (tokenizer.chat_template)." };
        var output = new Option<FileInfo>("--out") { Description = "The .gguf file to write.", Required = true };
        var threads = new Option<int>("--threads") { Description = "Quantization threads (0 = all processors)." };
        var adapterOnly = new Option<bool>("--adapter-only") { Description = "Write only the LoRA adapter as an adapter GGUF (for Ollama's ADAPTER) instead of a merged model." };
        // Test-only: a damaged GGUF that the quality gate (gguf-check) must catch. Hidden from --help.
        var damage = new Option<float>("--test-scale-weights") { Hidden = true, DefaultValueFactory = _ => 1f };
        var command = new Command("export", "Merge the adapter and write a quantized GGUF file for llama.cpp and Ollama.");
        foreach (var o in new Option[] { baseModel, adapter, type, name, version, template, output, threads, adapterOnly, damage }) command.Options.Add(o);
        command.SetAction((parse, cancellationToken) =>
        {
            if (parse.GetValue(adapterOnly))
            {
                var adapterDir = parse.GetValue(adapter)
                    ?? throw new FineTuneException("FT4013", "--adapter-only needs --adapter <dir>");
                var path = parse.GetValue(output)!.FullName;
                var n = LoraAdapterExporter.Export(parse.GetValue(baseModel)!.FullName, adapterDir.FullName, parse.GetValue(name)!, parse.GetValue(version)!, path);
                Console.WriteLine($"Wrote {path} (LoRA adapter, {n} tensors)");
                return Task.FromResult(0);
            }
            var typeText = parse.GetValue(type)!;
            var fileType = FileTypes.Parse(typeText)
                ?? throw new FineTuneException("FT4011", $"unknown GGUF type '{typeText}'; use one of {string.Join(", ", FileTypes.Names)}");
            var templateName = parse.GetValue(template);
            var jinja = templateName is null ? null : ModelChatTemplate.Resolve(templateName, parse.GetValue(baseModel)!.FullName).JinjaTemplate;
            var options = new ExportOptions
            {
                BaseModel = parse.GetValue(baseModel)!.FullName,
                Adapter = parse.GetValue(adapter)?.FullName,
                Type = fileType,
                Name = parse.GetValue(name)!,
                Version = parse.GetValue(version)!,
                ChatTemplate = jinja,
                Output = parse.GetValue(output)!.FullName,
                Threads = parse.GetValue(threads),
                TestWeightScale = parse.GetValue(damage),
            };
            var types = GgufExporter.Export(options, cancellationToken);
            var counts = types.Values.GroupBy(t => t).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}");
            Console.WriteLine($"Wrote {options.Output} ({fileType}: {string.Join(", ", counts)})");
            return Task.FromResult(0);
        });
        return command;
    }
}
