using System.CommandLine;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Ollama;
using FineTune.Ollama.Modelfiles;
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
        var smokeTest = new Option<bool>("--smoke-test") { Description = "After publishing, ask the model one question over /api/chat and check that it answers, stops and shows no template markers.", DefaultValueFactory = _ => true };
        var prompt = new Option<string?>("--prompt") { Description = "The smoke test's question (default: the first held-out prompt of --samples, else a greeting)." };
        var samples = new Option<FileInfo?>("--samples") { Description = "samples.json written by `finetune samples`: its first prompt is the smoke test's question." };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Token limit of the smoke test's reply (num_predict).", DefaultValueFactory = _ => 128 };
        var smokeReport = new Option<FileInfo?>("--smoke-report") { Description = "Write the smoke test's request and result here as JSON." };

        var command = new Command("publish", "Publish a Modelfile and its GGUF files to an Ollama server (the key in OLLAMA_API_KEY is sent as a bearer token).")
        {
            host, modelfile, model, tagLatest, timeout, smokeTest, prompt, samples, maxTokens, smokeReport,
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
            if (!parse.GetValue(smokeTest)) return 0;

            var question = parse.GetValue(prompt) ?? FirstSamplePrompt(parse.GetValue(samples)) ?? DefaultPrompt;
            var limit = Math.Max(1, parse.GetValue(maxTokens));
            Console.Out.WriteLine($"smoke test: asking {name} \"{Shorten(question)}\" (temperature 0, at most {limit} tokens)");
            var outcome = await new OllamaSmokeTest(client).RunAsync(name.ToString(), ModelfileParser.ParseFile(parse.GetValue(modelfile)!.FullName), question, limit, cancellationToken);
            if (parse.GetValue(smokeReport) is { } report) outcome.Write(report.FullName);
            Report(outcome);
            return 0;
        });
        return command;
    }

    private const string DefaultPrompt = "Hello! Who are you?";

    private static string? FirstSamplePrompt(FileInfo? samples)
    {
        if (samples is null || !samples.Exists) return null;
        return JsonNode.Parse(File.ReadAllText(samples.FullName)) is JsonArray { Count: > 0 } list
            && (string?)list[0]?["prompt"] is { Length: > 0 } text ? text : null;
    }

    private static void Report(SmokeTestResult r)
    {
        var ending = r.Stopped ? "ended at a stop token" : $"ended by '{r.DoneReason ?? "unknown"}'";
        Console.Out.WriteLine($"smoke test: {r.Model} answered \"{Shorten(r.Reply)}\" ({r.EvalCount?.ToString() ?? "?"} tokens, {ending})");
        if (r.Reply.Trim().Length == 0)
            CanonicalMessage.Warn(OllamaErrorCodes.SmokeTestEmpty,
                $"{r.Model} answered the smoke test's question with an empty reply: the model ends its turn at once. Check the held-out replies in report.html and train longer or on more data.");
        if (!r.Stopped)
            CanonicalMessage.Warn(OllamaErrorCodes.SmokeTestNoStop,
                $"{r.Model} did not stop within {r.MaxTokens} tokens (done_reason '{r.DoneReason}'): in Ollama it will run on until num_predict. The model has not learned to end its turn: keep train_on_responses_only on (the reply's end-of-turn marker is trained), train more steps, or raise FineTuneSampleMaxTokens if its replies are simply long.");
        if (r.Markers.Count > 0)
            CanonicalMessage.Warn(OllamaErrorCodes.SmokeTestMarkers,
                $"{r.Model}'s reply contains the chat template's own text ({string.Join(", ", r.Markers.Select(m => "'" + m + "'"))}): the TEMPLATE or the stops do not match what the model was trained on. Use the base model's own template (no ChatTemplate item) or a built-in that matches its tokenizer.");
    }

    private static string Shorten(string text)
    {
        var line = text.ReplaceLineEndings(" ").Trim();
        return line.Length <= 80 ? line : line[..77] + "...";
    }
}
