using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Hub;

/// <summary>The files of a model repository that training and export read; everything else (other formats, docs, images) is not fetched.</summary>
internal static class ModelFiles
{
    /// <summary>Small files, fetched first; config.json leads so an unsupported architecture stops before any weight.</summary>
    public static readonly string[] Metadata =
        ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json"];

    public const string Index = "model.safetensors.index.json";

    /// <summary>The metadata files the repository has, and how its weights are found.</summary>
    public static (List<string> Metadata, string? Index, List<string> Weights) Select(HubModelId id, IReadOnlyList<string> files)
    {
        var present = files.ToHashSet(StringComparer.Ordinal);
        var metadata = Metadata.Where(present.Contains).ToList();
        if (!present.Contains("config.json"))
            throw new FineTuneException(HubErrors.BadResponse, $"{id} has no config.json: it is not a transformers model repository (GGUF-only and adapter repositories cannot be a base model).");
        if (present.Contains(Index)) return (metadata, Index, []);
        if (present.Contains("model.safetensors")) return (metadata, null, ["model.safetensors"]);
        // Top-level weights only: "original/" and "consolidated.safetensors" are other layouts of the same weights.
        var weights = files.Where(f => !f.Contains('/') && f.EndsWith(".safetensors", StringComparison.Ordinal) && !f.StartsWith("consolidated", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        if (weights.Count > 0) return (metadata, null, weights);
        var pickles = files.Where(f => f.EndsWith(".bin", StringComparison.Ordinal) || f.EndsWith(".pth", StringComparison.Ordinal) || f.EndsWith(".pt", StringComparison.Ordinal)).ToList();
        throw new FineTuneException(HubErrors.PickleOnly, pickles.Count > 0
            ? $"{id} has its weights only as pickled PyTorch files ({string.Join(", ", pickles.Take(3))}); pickles can run code when loaded, so they are never loaded. Use a revision or a copy of the model with .safetensors weights (many repositories have a 'refs/pr/N' conversion)."
            : $"{id} has no .safetensors weights at this revision.");
    }
}
