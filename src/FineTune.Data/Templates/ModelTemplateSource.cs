using System.Text.Json;
using FineTune.Core.Diagnostics;
using FineTune.Data.Jinja;

namespace FineTune.Data.Templates;

/// <summary>
/// A base model's own Jinja chat template, as transformers finds it: <c>chat_template.jinja</c> in
/// the model folder (newer repositories), else <c>chat_template</c> in <c>tokenizer_config.json</c>
/// (a string, or a list of named templates of which <c>default</c> is the chat one).
/// </summary>
/// <param name="Template">The template text, unchanged (what the GGUF's <c>tokenizer.chat_template</c> gets).</param>
/// <param name="Origin">The file it came from, for errors.</param>
public sealed record ModelTemplateSource(string Template, JinjaSource Origin)
{
    /// <summary>The file holding the template (a .jinja file or tokenizer_config.json).</summary>
    public string File => Origin.File ?? "";

    /// <summary>The model's template, or null when the folder has none.</summary>
    /// <exception cref="FineTuneException">FT1045 when tokenizer_config.json's <c>chat_template</c> is malformed.</exception>
    public static ModelTemplateSource? Find(string modelDirectory)
    {
        var jinjaFile = Path.Combine(modelDirectory, "chat_template.jinja");
        if (System.IO.File.Exists(jinjaFile))
            return new ModelTemplateSource(System.IO.File.ReadAllText(jinjaFile), new JinjaSource(Path.GetFullPath(jinjaFile), IsTemplateFile: true));

        var config = Path.Combine(modelDirectory, "tokenizer_config.json");
        if (!System.IO.File.Exists(config)) return null;
        var origin = new JinjaSource(Path.GetFullPath(config), IsTemplateFile: false);
        try
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(config), new JsonDocumentOptions { AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("chat_template", out var t)) return null;
            switch (t.ValueKind)
            {
                case JsonValueKind.Null: return null;
                case JsonValueKind.String: return new ModelTemplateSource(t.GetString()!, origin);
                case JsonValueKind.Array:
                    // transformers stores several templates as [{"name": ..., "template": ...}] and uses "default" for chat.
                    foreach (var entry in t.EnumerateArray())
                        if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
                            && n.GetString() == "default" && entry.TryGetProperty("template", out var body) && body.ValueKind == JsonValueKind.String)
                            return new ModelTemplateSource(body.GetString()!, origin);
                    throw new FineTuneException(ChatTemplateErrors.BadModelTemplate,
                        "tokenizer_config.json \"chat_template\" is a list of named templates without one named \"default\" (the chat template transformers uses).", config);
                default:
                    throw new FineTuneException(ChatTemplateErrors.BadModelTemplate, "tokenizer_config.json \"chat_template\" must be a string or a list of {\"name\", \"template\"}.", config);
            }
        }
        catch (JsonException e)
        {
            throw new FineTuneException(ChatTemplateErrors.BadModelTemplate, $"tokenizer_config.json is not valid JSON: {e.Message}", config);
        }
    }
}

/// <summary>The FT104x-FT106x codes of chat templates taken from the base model.</summary>
public static class ChatTemplateErrors
{
    /// <summary>tokenizer_config.json's <c>chat_template</c> is neither a string nor a list with a <c>default</c> entry.</summary>
    public const string BadModelTemplate = "FT1045";
    /// <summary>No <c>ChatTemplate</c> item (or <c>model</c>) and the base model has no chat template.</summary>
    public const string NoModelTemplate = "FT1046";
    /// <summary>The assistant replies cannot be located in the template's rendering, so the loss mask cannot be derived.</summary>
    public const string Unmaskable = "FT1047";
    /// <summary>No Go TEMPLATE reproduces the model's template for plain chat.</summary>
    public const string NoOllamaTemplate = "FT1048";
}
