using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Ollama.Publishing;

/// <summary>
/// Publishes a Modelfile the way <c>ollama create -f Modelfile</c> does, over HTTP only: hashes the FROM
/// and ADAPTER files, uploads the blobs the server does not have yet, sends <c>/api/create</c> with the
/// Modelfile's template, system prompt, parameters and license, checks the result with <c>/api/show</c>
/// and optionally tags it <c>latest</c>.
/// </summary>
public sealed class OllamaPublisher(OllamaClient client, Action<string> log)
{
    /// <summary>Publishes <paramref name="modelfilePath"/> as <paramref name="name"/>.</summary>
    public async Task<PublishResult> PublishAsync(string modelfilePath, OllamaModelName name, bool tagLatest, CancellationToken cancellationToken = default)
    {
        var modelfile = ModelfileParser.ParseFile(modelfilePath);
        var directory = Path.GetDirectoryName(Path.GetFullPath(modelfilePath))!;
        var request = new JsonObject { ["model"] = name.ToString() };
        var uploads = new List<(string Path, string Key)>();

        var froms = modelfile.Instructions.Where(x => x.Command == "FROM").ToList();
        if (froms.Count > 1)
            throw Unsupported(modelfilePath, froms[1].Line, "more than one FROM line");
        if (modelfile.Find("DRAFT") is { } draft)
            throw Unsupported(modelfilePath, draft.Line, "DRAFT");

        var from = froms[0];
        var fromPath = ExpandPath(from.Value, directory);
        if (Directory.Exists(fromPath))
            throw Unsupported(modelfilePath, from.Line, "FROM a folder (publish a GGUF file)");
        if (File.Exists(fromPath)) uploads.Add((fromPath, "files"));
        else if (LooksLikePath(from.Value))
            throw new FineTuneException(OllamaErrorCodes.FileNotFound, $"FROM file not found: {fromPath}", modelfilePath, from.Line);
        else request["from"] = from.Value;

        if (modelfile.Instructions.LastOrDefault(x => x.Command == "ADAPTER") is { } adapter)
        {
            var adapterPath = ExpandPath(adapter.Value, directory);
            if (!File.Exists(adapterPath))
                throw new FineTuneException(OllamaErrorCodes.FileNotFound, $"ADAPTER file not found: {adapterPath}", modelfilePath, adapter.Line);
            uploads.Add((adapterPath, "adapters"));
        }

        var uploaded = new List<string>();
        var present = new List<string>();
        foreach (var (path, key) in uploads)
        {
            log($"hashing {Path.GetFileName(path)}");
            var digest = await FileDigest.ComputeAsync(path, cancellationToken);
            if (await client.BlobExistsAsync(digest, cancellationToken))
            {
                log($"blob {digest} ({Path.GetFileName(path)}) is already on the server");
                present.Add(digest);
            }
            else
            {
                await client.UploadBlobAsync(path, digest, new UploadProgress(Path.GetFileName(path), FineTune.Core.IO.FileLinks.Length(path), log), cancellationToken);
                uploaded.Add(digest);
            }
            var map = request[key] as JsonObject ?? new JsonObject();
            map[Path.GetFileName(path)] = digest;
            request[key] = map;
        }

        AddText(request, "template", modelfile.Template);
        AddText(request, "system", modelfile.System);
        AddText(request, "renderer", modelfile.Instructions.LastOrDefault(x => x.Command == "RENDERER")?.Value);
        AddText(request, "parser", modelfile.Instructions.LastOrDefault(x => x.Command == "PARSER")?.Value);
        AddText(request, "requires", modelfile.Instructions.LastOrDefault(x => x.Command == "REQUIRES")?.Value);
        if (Parameters(modelfile, modelfilePath) is { Count: > 0 } parameters) request["parameters"] = parameters;
        if (modelfile.Licenses is { Count: > 0 } licenses)
            request["license"] = licenses.Count == 1 ? licenses[0] : new JsonArray(licenses.Select(l => (JsonNode)l).ToArray());
        if (modelfile.Messages is { Count: > 0 } messages)
            request["messages"] = new JsonArray(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Key, ["content"] = m.Value }).ToArray());

        log($"creating {name}");
        string? lastStatus = null;
        await client.CreateAsync(request, status =>
        {
            var text = (string?)status["status"];
            if (text is not null && text != lastStatus) log($"ollama: {text}");
            lastStatus = text;
        }, cancellationToken);

        await VerifyAsync(name.ToString(), modelfile, cancellationToken);
        if (tagLatest)
        {
            var latest = name.WithTag("latest").ToString();
            await client.CopyAsync(name.ToString(), latest, cancellationToken);
            await VerifyAsync(latest, modelfile, cancellationToken);
            log($"tagged {latest}");
        }
        log($"published {name} to {client.BaseUrl.GetLeftPart(UriPartial.Authority)}");
        return new PublishResult(name.ToString(), uploaded, present, tagLatest);
    }

    private async Task VerifyAsync(string model, Modelfile modelfile, CancellationToken cancellationToken)
    {
        var shown = await client.ShowAsync(model, cancellationToken)
            ?? throw new FineTuneException(OllamaErrorCodes.VerificationFailed, $"Ollama reported success but does not show {model}.");
        if (modelfile.Template is { } template && (string?)shown["template"] != template)
            throw new FineTuneException(OllamaErrorCodes.VerificationFailed, $"{model} on the server has a different TEMPLATE than the Modelfile.");
        if (modelfile.System is { } system && (string?)shown["system"] != system)
            throw new FineTuneException(OllamaErrorCodes.VerificationFailed, $"{model} on the server has a different SYSTEM prompt than the Modelfile.");
        var sentStops = modelfile.Parameters.Where(p => p.Key == "stop").Select(p => p.Value).Order(StringComparer.Ordinal).ToList();
        var shownStops = ShownParameters.Values(ShownParameters.Parse((string?)shown["parameters"]), "stop").Order(StringComparer.Ordinal).ToList();
        if (!sentStops.SequenceEqual(shownStops))
            throw new FineTuneException(OllamaErrorCodes.VerificationFailed,
                $"{model} on the server stops at [{string.Join(", ", shownStops.Select(Quote))}], not at the Modelfile's [{string.Join(", ", sentStops.Select(Quote))}].");
    }

    private static string Quote(string s) => "\"" + s.Replace("\n", "\\n", StringComparison.Ordinal) + "\"";

    /// <summary>Typed parameters as Ollama's CLI sends them: stop accumulates into a list, others: last one wins.</summary>
    private static JsonObject Parameters(Modelfile modelfile, string file)
    {
        var result = new JsonObject();
        foreach (var instruction in modelfile.Instructions.Where(x => x.Command == "PARAMETER"))
        {
            var value = OllamaParameters.Convert(instruction.Key!, instruction.Value, file, instruction.Line);
            if (OllamaParameters.TypeOf(instruction.Key!) == OllamaParameterType.StringList)
            {
                var list = result[instruction.Key!] as JsonArray ?? new JsonArray();
                list.Add((string)value);
                result[instruction.Key!] = list;
            }
            else result[instruction.Key!] = JsonValue.Create(value);
        }
        return result;
    }

    private static void AddText(JsonObject request, string key, string? value)
    {
        if (value is not null) request[key] = value;
    }

    /// <summary>Ollama's path expansion for FROM and ADAPTER: absolute, <c>~</c> for the home folder, else relative to the Modelfile.</summary>
    private static string ExpandPath(string value, string directory)
    {
        if (value == "~" || value.StartsWith("~/", StringComparison.Ordinal))
            return Path.GetFullPath(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), value.TrimStart('~').TrimStart('/')));
        return Path.GetFullPath(Path.IsPathRooted(value) ? value : Path.Combine(directory, value));
    }

    // A FROM that names no existing file is a model already on the server, unless it is clearly a path.
    private static bool LooksLikePath(string value) =>
        value.StartsWith('.') || value.StartsWith('/') || value.StartsWith('\\') || value.StartsWith('~') || Path.IsPathRooted(value)
        || value.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || value.EndsWith(".bin", StringComparison.OrdinalIgnoreCase);

    private static FineTuneException Unsupported(string file, int line, string what) =>
        new(OllamaErrorCodes.Unsupported, $"finetune publish does not support {what}; use 'ollama create -f' for such a Modelfile.", file, line);

    /// <summary>Prints an upload line at every 10% step, synchronously (no thread-pool hop per buffer).</summary>
    private sealed class UploadProgress(string file, long total, Action<string> log) : IProgress<long>
    {
        private int lastDecile = -1;

        public void Report(long value)
        {
            var decile = total == 0 ? 10 : (int)(value * 10 / total);
            if (decile <= lastDecile) return;
            lastDecile = decile;
            log($"uploading {file}: {decile * 10}% ({value / 1048576.0:0.0} of {total / 1048576.0:0.0} MiB)");
        }
    }
}
