using FineTune.Core.Diagnostics;

namespace FineTune.Data.Templates;

/// <summary>Finds chat templates: built-in formats by name, custom formats from files.</summary>
public static class ChatTemplates
{
    /// <summary>The built-in template names, e.g. <c>llama-3</c>, <c>chatml</c>, <c>qwen-2.5</c>.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } =
        ["llama-3", "chatml", "qwen-2.5", "mistral", "gemma", "phi-3", "alpaca", "vicuna", "zephyr"];

    /// <summary>
    /// Resolves a <c>ChatTemplate</c> item: a built-in name (case-insensitive), or else a file path
    /// (relative to <paramref name="baseDirectory"/>) holding a custom template with <c>{SYSTEM}</c>
    /// (optional), <c>{INPUT}</c> and <c>{OUTPUT}</c> placeholders.
    /// </summary>
    /// <exception cref="FineTuneException">FT1020 when neither a built-in nor an existing file;
    /// FT1021/FT1022 for a malformed custom template.</exception>
    public static ChatTemplate Resolve(string nameOrPath, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        if (BuiltInTemplates.All.TryGetValue(nameOrPath.Trim(), out var layout))
            return new ChatTemplate(BuiltInNames.First(n => n.Equals(nameOrPath.Trim(), StringComparison.OrdinalIgnoreCase)), layout);

        var path = Path.GetFullPath(nameOrPath, baseDirectory);
        if (!File.Exists(path))
            throw new FineTuneException("FT1020",
                $"Chat template '{nameOrPath}' is neither a built-in template ({string.Join(", ", BuiltInNames)}) nor an existing file ({path}).");
        return new ChatTemplate(nameOrPath, CustomTemplateParser.Parse(File.ReadAllText(path), path));
    }
}
