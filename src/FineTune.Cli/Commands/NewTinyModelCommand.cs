using System.CommandLine;
using FineTune.Cli.Hub;
using FineTune.Engine.Model;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune new-tiny-model</c>: a deterministic random-init Llama or Gemma 3 model in Hugging Face layout.</summary>
internal static class NewTinyModelCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.json (and tokenizer_config.json) to copy into the model, or a Hugging Face id (org/name[@revision]) whose tokenizer files are fetched into the hub cache.", Required = true };
        var output = new Option<string>("--out") { Description = "Model folder to write.", Required = true };
        var layers = new Option<int>("--layers") { Description = "Decoder layers.", DefaultValueFactory = _ => 2 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden size.", DefaultValueFactory = _ => 64 };
        var heads = new Option<int>("--heads") { Description = "Attention heads.", DefaultValueFactory = _ => 4 };
        var kvHeads = new Option<int>("--kv-heads") { Description = "Key/value heads (GQA).", DefaultValueFactory = _ => 2 };
        var intermediate = new Option<int>("--intermediate") { Description = "MLP intermediate size.", DefaultValueFactory = _ => 128 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random initialisation.", DefaultValueFactory = _ => 42 };
        var architecture = new Option<string>("--architecture") { Description = "model_type: llama or gemma3_text.", DefaultValueFactory = _ => "llama" };
        architecture.AcceptOnlyFromAmong(TinyModelFactory.Architectures.ToArray());
        var command = new Command("new-tiny-model", "Write a small random-init Llama or Gemma 3 model (HF layout) for tests and examples.");
        foreach (var o in new Option[] { tokenizer, output, layers, hidden, heads, kvHeads, intermediate, seed, architecture }) command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            var tokenizerPath = parse.GetValue(tokenizer)!;
            // A folder wins over an id of the same shape, as for BaseModel.
            if (!Directory.Exists(tokenizerPath) && HubModelId.Looks(tokenizerPath))
            {
                var resolved = await new HubDownloader(HubSettings.FromEnvironment(), Console.WriteLine).ResolveTokenizerAsync(HubModelId.Parse(tokenizerPath), ct);
                Console.WriteLine($"{resolved.Id}: tokenizer at commit {resolved.Commit}{(resolved.Downloaded.Count == 0 ? " from the cache" : "")}");
                tokenizerPath = resolved.Snapshot;
            }
            var shape = new TinyModelShape(parse.GetValue(layers), parse.GetValue(hidden), parse.GetValue(heads),
                parse.GetValue(kvHeads), parse.GetValue(intermediate), parse.GetValue(seed), parse.GetValue(architecture)!);
            var config = TinyModelFactory.Create(tokenizerPath, parse.GetValue(output)!, shape);
            Console.WriteLine($"Wrote {parse.GetValue(output)}: {config.ModelType}, {config.NumLayers} layers, hidden {config.HiddenSize}, vocab {config.VocabSize}.");
            return 0;
        });
        return command;
    }
}
