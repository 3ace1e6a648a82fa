using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using FineTune.Cli.Quality;
using FineTune.Core.Config;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune manifest</c>: writes <c>model-manifest.json</c>, the record of what a model was made
/// from (every input's path and SHA-256, the base model's files, every hyper-parameter, tool
/// versions, final losses) and what was made (each artifact's SHA-256 and size). Paths are relative
/// to the project so manifests from two checkouts compare equal.
/// </summary>
internal static class ManifestCommand
{
    public static Command Create()
    {
        var name = new Option<string>("--name") { Description = "Model name.", Required = true };
        var version = new Option<string>("--version") { Description = "Model version (SemVer).", Required = true };
        var projectDir = new Option<DirectoryInfo>("--project-dir") { Description = "Project folder; paths in the manifest are relative to it.", Required = true };
        var baseModel = new Option<DirectoryInfo>("--base-model") { Description = "Base model folder (Hugging Face layout).", Required = true };
        var config = new Option<FileInfo?>("--config") { Description = "lora.yaml (defaults apply when absent)." };
        var template = new Option<string>("--chat-template") { Description = "Chat template name or file.", Required = true };
        var trainDir = new Option<DirectoryInfo>("--train-dir") { Description = "Output folder of 'finetune train'.", Required = true };
        var tokensDir = new Option<DirectoryInfo?>("--tokens-dir") { Description = "Output folder of 'finetune tokenize' (for dataset statistics)." };
        var datasets = new Option<FileInfo[]>("--dataset") { Description = "A dataset file (repeatable)." };
        var artifacts = new Option<FileInfo[]>("--artifact") { Description = "An output file to record (repeatable)." };
        var output = new Option<FileInfo>("--out") { Description = "Where to write model-manifest.json.", Required = true };
        var quality = new Option<FileInfo?>("--quality") { Description = "quality.json of 'finetune gguf-check': each GGUF's perplexity against the trained model." };
        var baseSource = new Option<FileInfo?>("--base-model-source") { Description = "base-model.json of 'finetune download' (hub id, revision, commit) when the base model came from the hub." };

        var command = new Command("manifest", "Write model-manifest.json: inputs and their hashes, hyper-parameters, losses, artifacts.")
        {
            name, version, projectDir, baseModel, config, template, trainDir, tokensDir, datasets, artifacts, output, baseSource, quality,
        };
        command.SetAction(parse =>
        {
            var manifest = new ManifestWriter(parse.GetValue(projectDir)!.FullName);
            manifest.Write(
                parse.GetValue(output)!.FullName,
                parse.GetValue(name)!,
                parse.GetValue(version)!,
                parse.GetValue(baseModel)!.FullName,
                parse.GetValue(config)?.FullName,
                parse.GetValue(template)!,
                parse.GetValue(trainDir)!.FullName,
                parse.GetValue(tokensDir)?.FullName,
                parse.GetValue(datasets) ?? [],
                parse.GetValue(artifacts) ?? [],
                parse.GetValue(baseSource)?.FullName,
                parse.GetValue(quality)?.FullName);
            return 0;
        });
        return command;
    }

    private sealed class ManifestWriter(string projectDir)
    {
        public void Write(string path, string name, string version, string baseModel, string? configPath, string template,
            string trainDir, string? tokensDir, FileInfo[] datasets, FileInfo[] artifacts, string? baseSource, string? qualityPath)
        {
            var config = configPath is null ? new TrainingConfig() : TrainingConfigLoader.Load(configPath);
            var summary = ReadJson(Path.Combine(trainDir, "train-summary.json"));
            AtomicFile.Write(path, stream =>
            {
                using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                w.WriteStartObject();
                w.WriteString("name", name);
                w.WriteString("version", version);
                w.WriteStartObject("tool");
                w.WriteString("name", "finetune");
                w.WriteString("version", ToolVersion.Current);
                if (summary is { } s && s.RootElement.TryGetProperty("engine_version", out var engine)) w.WriteString("engine_version", engine.GetString());
                if (summary is { } s2 && s2.RootElement.TryGetProperty("device", out var device)) w.WriteString("device", device.GetString());
                if (summary is { } s3 && s3.RootElement.TryGetProperty("base_weights", out var weights)) w.WriteString("base_weights", weights.GetString());
                w.WriteEndObject();

                w.WriteStartObject("base_model");
                w.WriteString("path", Relative(baseModel));
                if (baseSource is not null && ReadJson(baseSource) is { } hub)
                {
                    // The hub id and the commit the revision resolved to: what a colleague needs to fetch the same bytes.
                    foreach (var key in new[] { "id", "revision", "commit" })
                        w.WriteString(key == "id" ? "hub_id" : key, hub.RootElement.GetProperty(key).GetString());
                }
                WriteFiles(w, "files", Directory.EnumerateFiles(baseModel, "*", SearchOption.AllDirectories)
                    .Where(f => !Path.GetRelativePath(baseModel, f).Split(Path.DirectorySeparatorChar).Any(p => p.StartsWith('.')))
                    .Order(StringComparer.Ordinal), f => Path.GetRelativePath(baseModel, f).Replace('\\', '/'));
                w.WriteEndObject();

                // Where the trained adapter is (the train step's cache folder) and its hashes:
                // `finetune chat <project | manifest>` chats with exactly this adapter.
                w.WriteStartObject("adapter");
                w.WriteString("path", Relative(trainDir));
                WriteFiles(w, "files", AdapterFiles.Select(f => Path.Combine(trainDir, f)), Path.GetFileName);
                w.WriteEndObject();

                w.WriteString("chat_template", File.Exists(template) ? Relative(template) : template);
                var inputs = datasets.Select(d => d.FullName).ToList();
                if (configPath is not null) inputs.Add(configPath);
                if (File.Exists(template)) inputs.Add(Path.GetFullPath(template));
                WriteFiles(w, "inputs", inputs, Relative);

                w.WriteStartObject("hyperparameters");
                foreach (var (key, value) in TrainingConfigDescription.Describe(config))
                {
                    w.WritePropertyName(key);
                    WriteValue(w, value);
                }
                w.WriteEndObject();

                w.WritePropertyName("training");
                if (summary is null) w.WriteNullValue(); else summary.RootElement.WriteTo(w);
                w.WritePropertyName("dataset");
                var stats = tokensDir is null ? null : ReadJson(Path.Combine(tokensDir, "stats.json"));
                if (stats is null) w.WriteNullValue(); else stats.RootElement.WriteTo(w);

                WriteFiles(w, "outputs", artifacts.Select(a => a.FullName), Path.GetFileName);
                if (qualityPath is not null) WriteQuality(w, QualityCheck.Read(qualityPath));
                w.WriteEndObject();
            });
        }

        /// <summary>The files of a PEFT adapter folder that chat and export read.</summary>
        public static readonly string[] AdapterFiles = ["adapter_config.json", "adapter_model.safetensors"];
        /// <summary>The quality gate's numbers (not the replies, which are in report.html): per GGUF its perplexity against the trained model's.</summary>
        private static void WriteQuality(Utf8JsonWriter w, QualityCheck q)
        {
            w.WriteStartObject("quantization_check");
            w.WriteString("data", q.Data);
            w.WriteNumber("examples", q.Examples);
            w.WriteNumber("target_tokens", q.TargetTokens);
            w.WriteNumber("max_tokens", q.MaxTokens);
            w.WriteStartObject("trained");
            Number(w, "loss", q.TrainedLoss);
            Number(w, "perplexity", q.TrainedPerplexity);
            w.WriteNumber("replies_stopped", q.TrainedRepliesStopped);
            w.WriteNumber("replies", q.Replies.Count);
            w.WriteEndObject();
            w.WriteStartArray("quantizations");
            foreach (var r in q.Quantizations)
            {
                w.WriteStartObject();
                w.WriteString("quantization", r.Quantization);
                w.WriteString("file", r.File);
                Number(w, "loss", r.Loss);
                Number(w, "perplexity", r.Perplexity);
                Number(w, "perplexity_gap", r.PerplexityGap);
                w.WriteNumber("replies_stopped", r.RepliesStopped);
                w.WriteNumber("replies_diverged", r.RepliesDiverged);
                w.WriteNumber("replies", r.Replies);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }

        // No target tokens gives NaN, which JSON cannot hold.
        private static void Number(Utf8JsonWriter w, string name, double value)
        {
            if (double.IsFinite(value)) w.WriteNumber(name, value); else w.WriteNull(name);
        }

        private static void WriteFiles(Utf8JsonWriter w, string property, IEnumerable<string> files, Func<string, string> label)
        {
            w.WriteStartArray(property);
            foreach (var file in files)
            {
                if (!File.Exists(file)) throw new FineTuneException("FT7001", $"File to record in the manifest does not exist: {file}", file);
                using var stream = File.OpenRead(file);
                w.WriteStartObject();
                w.WriteString("path", label(file));
                w.WriteString("sha256", Convert.ToHexStringLower(SHA256.HashData(stream)));
                w.WriteNumber("size", stream.Length);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }

        private static void WriteValue(Utf8JsonWriter w, object value)
        {
            switch (value)
            {
                case int i: w.WriteNumberValue(i); break;
                case double d: w.WriteNumberValue(d); break;
                case bool b: w.WriteBooleanValue(b); break;
                case string s: w.WriteStringValue(s); break;
                case IEnumerable<string> list:
                    w.WriteStartArray();
                    foreach (var item in list) w.WriteStringValue(item);
                    w.WriteEndArray();
                    break;
                default: throw new InvalidOperationException($"No JSON form for a {value.GetType()} hyper-parameter.");
            }
        }

        private static JsonDocument? ReadJson(string path) => File.Exists(path) ? JsonDocument.Parse(File.ReadAllBytes(path)) : null;

        private string Relative(string path) => Path.GetRelativePath(projectDir, Path.GetFullPath(path)).Replace('\\', '/');
    }
}
