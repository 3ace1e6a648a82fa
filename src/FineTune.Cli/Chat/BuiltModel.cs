using System.Security.Cryptography;
using System.Text.Json;
using FineTune.Cli.Hub;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Cli.Chat;

/// <summary>
/// What a build made, as <c>finetune chat &lt;project folder | model-manifest.json&gt;</c> finds it:
/// the base model, the trained adapter and the chat template recorded in the build's
/// <c>model-manifest.json</c>, and the system prompt of the Modelfile beside it. Nothing is guessed:
/// an adapter whose bytes are not the recorded ones, or a base model whose files changed size, is an
/// error that says to build again.
/// </summary>
public sealed record BuiltModel(string Manifest, string Name, string Version, string BaseModel, string Adapter, string ChatTemplate, string? SystemPrompt)
{
    public const string ManifestFileName = "model-manifest.json";

    /// <summary>
    /// The build behind <paramref name="path"/> when it is a manifest or a project folder (a folder
    /// without config.json); null for a model folder, a GGUF or anything else the plain chat handles.
    /// </summary>
    public static BuiltModel? Find(string path)
    {
        if (File.Exists(path))
            return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Load(Path.GetFullPath(path)) : null;
        if (!Directory.Exists(path) || File.Exists(Path.Combine(path, "config.json"))) return null;
        var project = Path.GetFullPath(path);
        var manifests = ManifestsOf(project);
        if (manifests.Count == 0)
        {
            // A folder that is neither a model nor a built project: the plain chat's errors describe it.
            if (!Directory.EnumerateFiles(project, "*.*proj").Any()) return null;
            throw new FineTuneException("FT7013",
                $"'{path}' is a project folder with no {ManifestFileName} under bin/: run 'dotnet build' there first, or pass the {ManifestFileName} of a FineTuneOutputDir outside bin/.", project);
        }
        // Several configurations built: the newest build is the one the user just made.
        return Load(manifests.OrderByDescending(File.GetLastWriteTimeUtc).First());
    }

    /// <summary>One line for stderr saying what is being chatted with.</summary>
    public string Describe(string currentDirectory) =>
        $"{Name} {Version} ({Path.GetRelativePath(currentDirectory, Manifest)}): base model {Path.GetRelativePath(currentDirectory, BaseModel)}, " +
        $"adapter {Path.GetRelativePath(currentDirectory, Adapter)}, chat template {ChatTemplate}";

    private static List<string> ManifestsOf(string project)
    {
        var bin = Path.Combine(project, "bin");
        return Directory.Exists(bin)
            ? Directory.EnumerateDirectories(bin).Select(d => Path.Combine(d, ManifestFileName)).Where(File.Exists).ToList()
            : [];
    }

    private static BuiltModel Load(string manifest)
    {
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(File.ReadAllBytes(manifest)).RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new FineTuneException("FT7016", $"'{manifest}' is not a {ManifestFileName} ({e.Message}).", manifest);
        }
        string Text(JsonElement e, string property) =>
            e.ValueKind == JsonValueKind.Object && e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw new FineTuneException("FT7016",
                    $"'{manifest}' has no '{property}': it is not a {ManifestFileName}, or one written by an older finetune (before it recorded the adapter); run 'dotnet build' again.", manifest);

        JsonElement Object(string property) =>
            root.ValueKind == JsonValueKind.Object && root.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.Object ? v
                : throw new FineTuneException("FT7016",
                    $"'{manifest}' has no '{property}': it is not a {ManifestFileName}, or one written by an older finetune (before it recorded the adapter); run 'dotnet build' again.", manifest);

        var baseModel = Object("base_model");
        var adapter = Object("adapter");
        var name = Text(root, "name");
        var version = Text(root, "version");
        var template = Text(root, "chat_template");
        var basePath = Text(baseModel, "path");
        var adapterPath = Text(adapter, "path");
        var project = ProjectOf(manifest, root);

        var adapterDir = Path.GetFullPath(Path.Combine(project, adapterPath));
        CheckAdapter(manifest, adapterDir, adapter);
        var baseDir = BaseModelFolder(manifest, project, basePath, baseModel);
        var templateFile = Path.Combine(project, template);
        var modelfile = Path.Combine(Path.GetDirectoryName(manifest)!, "Modelfile");
        return new BuiltModel(manifest, name, version, baseDir, adapterDir,
            File.Exists(templateFile) ? Path.GetFullPath(templateFile) : template,
            File.Exists(modelfile) ? ModelfileParser.ParseFile(modelfile).System : null);
    }

    /// <summary>
    /// The project folder: paths in a manifest are relative to it, so it is the nearest folder above
    /// the manifest in which every recorded input (datasets, lora.yaml, a template file) exists.
    /// </summary>
    private static string ProjectOf(string manifest, JsonElement root)
    {
        var inputs = root.TryGetProperty("inputs", out var i) && i.ValueKind == JsonValueKind.Array
            ? i.EnumerateArray().Select(x => x.GetProperty("path").GetString()!).ToList()
            : [];
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(manifest)!); dir is not null; dir = dir.Parent)
        {
            if (inputs.Count > 0 && inputs.All(p => File.Exists(Path.Combine(dir.FullName, p))))
                return dir.FullName;
        }
        throw new FineTuneException("FT7016",
            $"No folder above '{manifest}' holds the inputs it records ({string.Join(", ", inputs.Take(3))}); pass the project folder, or a manifest inside it.", manifest);
    }

    private static void CheckAdapter(string manifest, string adapterDir, JsonElement adapter)
    {
        foreach (var file in adapter.GetProperty("files").EnumerateArray())
        {
            var path = Path.Combine(adapterDir, file.GetProperty("path").GetString()!);
            if (!File.Exists(path))
                throw new FineTuneException("FT7014",
                    $"The adapter {Path.GetFileName(manifest)} records is not in '{adapterDir}' any more (the step cache was cleared or is elsewhere); run 'dotnet build' in the project to restore it.", manifest);
            using var stream = File.OpenRead(path);
            if (Convert.ToHexStringLower(SHA256.HashData(stream)) != file.GetProperty("sha256").GetString())
                throw new FineTuneException("FT7014",
                    $"'{path}' is not the adapter {Path.GetFileName(manifest)} records (its SHA-256 differs); run 'dotnet build' in the project again.", manifest);
        }
    }

    /// <summary>
    /// The base model: a hub model's snapshot at the recorded commit (in the hub cache, even when the
    /// project's link has moved on), else the recorded folder; each file must have its recorded size.
    /// </summary>
    private static string BaseModelFolder(string manifest, string project, string path, JsonElement baseModel)
    {
        var folder = Path.GetFullPath(Path.Combine(project, path));
        if (baseModel.TryGetProperty("hub_id", out var id) && baseModel.TryGetProperty("commit", out var commit))
        {
            var snapshot = new HubCache(HubSettings.FromEnvironment().CacheRoot, new HubModelId(id.GetString()!, commit.GetString()!)).Snapshot(commit.GetString()!);
            if (Directory.Exists(snapshot)) folder = snapshot;
            else if (!Directory.Exists(folder))
                throw new FineTuneException("FT7015",
                    $"The base model {id.GetString()} at commit {commit.GetString()} is not in the hub cache ({snapshot}); run 'dotnet build' in the project (or 'finetune download {id.GetString()}@{commit.GetString()}').", manifest);
        }
        if (!Directory.Exists(folder))
            throw new FineTuneException("FT7015", $"The base model folder '{folder}' that {Path.GetFileName(manifest)} records does not exist.", manifest);
        foreach (var file in baseModel.GetProperty("files").EnumerateArray())
        {
            var relative = file.GetProperty("path").GetString()!;
            var full = Path.Combine(folder, relative);
            if (!File.Exists(full) || FileLinks.Length(full) != file.GetProperty("size").GetInt64())
                throw new FineTuneException("FT7015",
                    $"The base model in '{folder}' is not the one {Path.GetFileName(manifest)} records ({relative} is missing or has another size); run 'dotnet build' in the project again.", manifest);
        }
        return folder;
    }
}
