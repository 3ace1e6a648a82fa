using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Data;

/// <summary>
/// What <c>finetune format --request request.json</c> reads: the project directory, the chat
/// template (built-in name or path), the lora.yaml path (or null) and the datasets with their
/// item metadata (keys present only when set on the item).
/// </summary>
/// <param name="ProjectDir">Absolute project directory; relative template paths resolve against it.</param>
/// <param name="ChatTemplate">A built-in template name or a template file path.</param>
/// <param name="LoraConfig">Absolute path of lora.yaml, or null for the defaults.</param>
/// <param name="Datasets">The <c>FineTuneDataset</c> items in project order.</param>
public sealed record FormatRequest(string ProjectDir, string ChatTemplate, string? LoraConfig, IReadOnlyList<DatasetItem> Datasets)
{
    /// <summary>Reads request.json; a malformed request is FT1017.</summary>
    public static FormatRequest Load(string path)
    {
        if (!File.Exists(path))
            throw new FineTuneException(DataErrors.BadRequest, $"Format request file not found: {path}.", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            var datasets = new List<DatasetItem>();
            if (root.TryGetProperty("datasets", out var items))
            {
                foreach (var item in items.EnumerateArray())
                {
                    var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                    if (item.TryGetProperty("metadata", out var md) && md.ValueKind == JsonValueKind.Object)
                        foreach (var p in md.EnumerateObject())
                            if (p.Value.ValueKind != JsonValueKind.Null) metadata[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
                    var itemPath = Required(item, "path");
                    var fullPath = item.TryGetProperty("fullPath", out var fp) && fp.ValueKind == JsonValueKind.String ? fp.GetString()! : itemPath;
                    datasets.Add(new DatasetItem(itemPath, fullPath, metadata));
                }
            }
            var loraConfig = root.TryGetProperty("loraConfig", out var lc) && lc.ValueKind == JsonValueKind.String && lc.GetString() is { Length: > 0 } l ? l : null;
            return new FormatRequest(Required(root, "projectDir"), Required(root, "chatTemplate"), loraConfig, datasets);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new FineTuneException(DataErrors.BadRequest, $"Format request is malformed ({e.Message}).", path, 0, 0, e);
        }
    }

    private static string Required(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
        : throw new KeyNotFoundException($"'{name}' must be a string");
}

/// <summary>One <c>FineTuneDataset</c> item.</summary>
/// <param name="Path">The path as written in the project (for messages).</param>
/// <param name="FullPath">The absolute path.</param>
/// <param name="Metadata">Item metadata: Format, Split, System, Prompt, Response, ConversationExtension, Sheet.</param>
public sealed record DatasetItem(string Path, string FullPath, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>A metadata value, or null when not set or blank.</summary>
    public string? Get(string key) => Metadata.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v : null;
}
