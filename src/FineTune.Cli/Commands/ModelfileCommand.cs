using System.CommandLine;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Ollama;
using FineTune.Ollama.Modelfiles;

using FineTune.Cli.Templates;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune modelfile</c>: writes an Ollama Modelfile for a GGUF (or, in adapter mode, for a LoRA
/// adapter on top of a model already in Ollama) with the chat template's TEMPLATE and stop tokens,
/// a system prompt, parameters and a license.
/// </summary>
internal static class ModelfileCommand
{
    public static Command Create()
    {
        var gguf = new Option<string?>("--gguf") { Description = "The model GGUF, as seen from the Modelfile's folder (a bare file name means next to it)." };
        var template = new Option<string>("--chat-template") { Description = "Chat template: model (the base model's own, needs --tokenizer), a built-in name (e.g. llama-3) or a template file.", Required = true };
        var system = new Option<string?>("--system") { Description = "Default system prompt (SYSTEM)." };
        var parameters = new Option<string[]>("--parameter") { Description = "An Ollama parameter as name=value, e.g. temperature=0.7 (repeatable).", AllowMultipleArgumentsPerToken = false };
        var license = new Option<FileInfo?>("--license") { Description = "A file whose text becomes LICENSE." };
        var from = new Option<string?>("--from") { Description = "Adapter mode: a model already in Ollama to put the adapter on (FROM)." };
        var adapter = new Option<string?>("--adapter") { Description = "A LoRA adapter GGUF (ADAPTER), as seen from the Modelfile's folder." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "The base model folder (or its tokenizer.json): the template is bound to and checked against its tokens (generic formats stop at its EOS)." };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the Modelfile.", Required = true };

        var command = new Command("modelfile", "Write an Ollama Modelfile: FROM, TEMPLATE and stop tokens of the chat template, SYSTEM, PARAMETERs, LICENSE, ADAPTER.")
        {
            gguf, template, system, parameters, license, from, adapter, tokenizer, output,
        };
        command.SetAction(parse =>
        {
            var outPath = parse.GetValue(output)!.FullName;
            var outDir = Path.GetDirectoryName(outPath)!;
            var (ggufPath, fromName) = (parse.GetValue(gguf), parse.GetValue(from));
            if ((ggufPath is null) == (fromName is null))
                throw new FineTuneException(OllamaErrorCodes.Unsupported, "give exactly one of --gguf <file> (a full model) or --from <model in Ollama> (adapter mode, with --adapter).");

            var chat = parse.GetValue(tokenizer) is { } tokenizerPath
                ? ModelChatTemplate.Resolve(parse.GetValue(template)!, tokenizerPath)
                : ChatTemplates.Resolve(parse.GetValue(template)!, Directory.GetCurrentDirectory());
            var licenseFile = parse.GetValue(license);
            if (licenseFile is not null && !licenseFile.Exists)
                throw new FineTuneException(OllamaErrorCodes.FileNotFound, $"license file not found: {licenseFile.FullName}", licenseFile.FullName);

            var ollamaTemplate = chat.OllamaTemplate;
            // The build log says what the TEMPLATE reproduces of a model's Jinja template, and what not.
            foreach (var line in chat.OllamaCoverage) Console.WriteLine($"finetune modelfile: {line}");
            ModelfileWriter.WriteFile(outPath, new ModelfileSpec
            {
                From = ggufPath is not null ? ModelfileWriter.Reference(ggufPath, outDir) : fromName!,
                Adapter = parse.GetValue(adapter) is { } a ? ModelfileWriter.Reference(a, outDir) : null,
                Template = ollamaTemplate,
                Stops = chat.StopTokens,
                System = parse.GetValue(system),
                Parameters = (parse.GetValue(parameters) ?? []).Select(ParseParameter).ToList(),
                License = licenseFile is null ? null : File.ReadAllText(licenseFile.FullName),
            });
            return 0;
        });
        return command;
    }

    private static KeyValuePair<string, string> ParseParameter(string text)
    {
        var eq = text.IndexOf('=');
        if (eq <= 0)
            throw new FineTuneException(OllamaErrorCodes.InvalidParameter, $"--parameter '{text}' must be name=value, e.g. temperature=0.7");
        return KeyValuePair.Create(text[..eq].Trim(), text[(eq + 1)..]);
    }
}
