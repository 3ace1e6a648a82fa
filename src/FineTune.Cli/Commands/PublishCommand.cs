using System.CommandLine;
using FineTune.Ollama.Publishing;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune publish</c>: pushes a Modelfile and the GGUF files it names to an Ollama server over its
/// HTTP API (no <c>ollama</c> CLI needed), as <c>name:tag</c>, optionally also as <c>name:latest</c>.
/// </summary>
internal static class PublishCommand
{
    public static Command Create()
    {
        var host = new Option<string?>("--host") { Description = $"Ollama server: host, host:port or http://host:port (default: {OllamaHost.EnvironmentVariable}, else {OllamaHost.Default})." };
        var modelfile = new Option<FileInfo>("--modelfile") { Description = "The Modelfile to publish; FROM and ADAPTER paths are relative to its folder.", Required = true };
        var model = new Option<string>("--model") { Description = "Name to create, model:tag (a SemVer tag's '+' becomes '_').", Required = true };
        var tagLatest = new Option<bool>("--tag-latest") { Description = "Also tag the model as model:latest." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for one small request before retrying.", DefaultValueFactory = _ => 30 };

        var command = new Command("publish", "Publish a Modelfile and its GGUF files to an Ollama server (the key in OLLAMA_API_KEY is sent as a bearer token).")
        {
            host, modelfile, model, tagLatest, timeout,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var name = OllamaModelName.Parse(parse.GetValue(model)!);
            var baseUrl = OllamaHost.Resolve(parse.GetValue(host));
            var options = OllamaClientOptions.FromEnvironment(Console.Out.WriteLine) with
            {
                RequestTimeout = TimeSpan.FromSeconds(Math.Max(1, parse.GetValue(timeout))),
            };
            using var client = new OllamaClient(baseUrl, options);
            var publisher = new OllamaPublisher(client, Console.Out.WriteLine);
            var result = await publisher.PublishAsync(parse.GetValue(modelfile)!.FullName, name, parse.GetValue(tagLatest), cancellationToken);
            Console.Out.WriteLine($"uploaded {result.Uploaded.Count} blob(s), {result.AlreadyPresent.Count} already on the server");
            return 0;
        });
        return command;
    }
}
