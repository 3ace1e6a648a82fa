using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using NuGet.Versioning;

namespace FineTune.Build.Tasks;

/// <summary>
/// Checks the model project's properties and items before any step runs, so a typo fails in
/// milliseconds with the property's line and the fix, instead of after minutes of training.
/// </summary>
public sealed class FineTuneValidateProject : Microsoft.Build.Utilities.Task
{
    /// <summary>Quantizations (GGUF file types) the exporter writes.</summary>
    public static readonly string[] KnownQuantizations = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"];

    /// <summary>Values of <c>FineTuneDataset</c>'s <c>Format</c> metadata.</summary>
    public static readonly string[] KnownFormats = ["alpaca", "sharegpt", "messages", "text", "columns", "preference"];

    /// <summary>Values of <c>FineTuneDevice</c>.</summary>
    public static readonly string[] KnownDevices = ["auto", "cpu", "cuda"];

    /// <summary>The project file (for error locations).</summary>
    [Required] public string ProjectFile { get; set; } = "";
    /// <summary><c>ModelName</c>.</summary>
    public string ModelName { get; set; } = "";
    /// <summary><c>ModelVersion</c>, SemVer 2.0.</summary>
    public string ModelVersion { get; set; } = "";
    /// <summary><c>BaseModel</c>: a folder in Hugging Face layout, or a Hugging Face id.</summary>
    public string BaseModel { get; set; } = "";
    /// <summary>True when the targets took <see cref="BaseModel"/> for a Hugging Face id (decided once, in FineTunePrepare).</summary>
    public bool BaseModelIsHubId { get; set; }
    /// <summary><c>GgufQuantizations</c>, semicolon-separated.</summary>
    public string GgufQuantizations { get; set; } = "";
    /// <summary><c>FineTuneDevice</c>.</summary>
    public string FineTuneDevice { get; set; } = "";
    /// <summary><c>FineTuneDataset</c> items.</summary>
    public ITaskItem[] Datasets { get; set; } = [];
    /// <summary><c>ChatTemplate</c> items: none or <c>model</c> (the base model's own template), a built-in name or a file.</summary>
    public ITaskItem[] ChatTemplates { get; set; } = [];
    /// <summary><c>LoraConfig</c> items.</summary>
    public ITaskItem[] LoraConfigs { get; set; } = [];

    /// <summary>The version in normalized SemVer form.</summary>
    [Output] public string NormalizedVersion { get; set; } = "";
    /// <summary>Quantizations, upper-cased and de-duplicated, in the order given.</summary>
    [Output] public string[] Quantizations { get; set; } = [];

    /// <inheritdoc />
    public override bool Execute()
    {
        ValidateName();
        ValidateVersion();
        ValidateQuantizations();
        ValidateDevice();
        ValidateBaseModel();
        ValidateDatasets();
        // No ChatTemplate item means the base model's own chat template.
        if (ChatTemplates.Length > 1) ValidateSingle(ChatTemplates, "ChatTemplate", "FT6010", "llama-3");
        ValidateSingle(LoraConfigs, "LoraConfig", "FT6011", "lora.yaml");
        foreach (var config in LoraConfigs)
            if (!File.Exists(config.GetMetadata("FullPath")))
                Error("FT6011", $"LoraConfig file '{config.ItemSpec}' does not exist. Create it (see docs/configuration.md) or fix the Include.", Item("LoraConfig", config.ItemSpec));
        return !Log.HasLoggedErrors;
    }

    private void ValidateName()
    {
        var at = Property("ModelName");
        if (string.IsNullOrWhiteSpace(ModelName))
        {
            Error("FT6001", "ModelName is not set. Add <ModelName>my-model</ModelName> to the project: it names the GGUF files and the Ollama model.", at);
            return;
        }
        var ok = char.IsAsciiLetterOrDigit(ModelName[0]) && ModelName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        if (!ok)
            Error("FT6001", $"ModelName '{ModelName}' may contain only ASCII letters, digits, '-', '_' and '.', and must start with a letter or digit (it becomes a file name and an Ollama model name).", at);
    }

    private void ValidateVersion()
    {
        if (!SemanticVersion.TryParse(ModelVersion ?? "", out var version))
        {
            Error("FT6002", $"ModelVersion '{ModelVersion}' is not a valid SemVer 2.0 version. Use MAJOR.MINOR.PATCH, optionally with -prerelease and +build, e.g. 1.0.0 or 1.1.0-beta.2.", Property("ModelVersion"));
            return;
        }
        NormalizedVersion = version.ToFullString();
    }

    private void ValidateQuantizations()
    {
        var result = new List<string>();
        foreach (var raw in GgufQuantizations.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var q = KnownQuantizations.FirstOrDefault(k => k.Equals(raw, StringComparison.OrdinalIgnoreCase));
            if (q is null)
                Error("FT6003", $"GgufQuantizations has unknown value '{raw}'. Known: {string.Join(", ", KnownQuantizations)}.", Property("GgufQuantizations"));
            else if (!result.Contains(q))
                result.Add(q);
        }
        if (result.Count == 0 && !Log.HasLoggedErrors)
            Error("FT6003", $"GgufQuantizations is empty. Set at least one of {string.Join(", ", KnownQuantizations)}.", Property("GgufQuantizations"));
        Quantizations = [.. result];
    }

    private void ValidateDevice()
    {
        if (!KnownDevices.Contains(FineTuneDevice, StringComparer.OrdinalIgnoreCase))
            Error("FT6012", $"FineTuneDevice '{FineTuneDevice}' is not one of {string.Join(", ", KnownDevices)}.", Property("FineTuneDevice"));
    }

    private void ValidateBaseModel()
    {
        var at = Property("BaseModel");
        if (string.IsNullOrWhiteSpace(BaseModel))
        {
            Error("FT6004", "BaseModel is not set. Point it at a folder in Hugging Face layout (config.json, *.safetensors, tokenizer.json), e.g. <BaseModel>models/base</BaseModel>.", at);
            return;
        }
        var dir = Path.GetFullPath(BaseModel, Path.GetDirectoryName(ProjectFile)!);
        // FineTunePrepare decided it is a hub id; FineTuneResolveBaseModel fetches it.
        if (BaseModelIsHubId) return;
        if (!Directory.Exists(dir))
        {
            Error("FT6005", $"BaseModel folder '{BaseModel}' does not exist ({dir}). Use a Hugging Face model id (org/name, e.g. Qwen/Qwen2.5-0.5B-Instruct), download the model there, or generate a tiny one with 'finetune new-tiny-model'.", at);
            return;
        }
        var missing = new List<string>();
        if (!File.Exists(Path.Combine(dir, "config.json"))) missing.Add("config.json");
        if (!File.Exists(Path.Combine(dir, "tokenizer.json"))) missing.Add("tokenizer.json");
        if (!Directory.EnumerateFiles(dir, "*.safetensors").Any()) missing.Add("*.safetensors (the weights)");
        if (missing.Count > 0)
            Error("FT6006", $"BaseModel folder '{BaseModel}' lacks {string.Join(", ", missing)}. It must hold a Hugging Face model: config.json, tokenizer.json and the weights as safetensors.", at);
    }

    private void ValidateDatasets()
    {
        if (Datasets.Length == 0)
        {
            Error("FT6009", "The project has no FineTuneDataset items. Add e.g. <FineTuneDataset Include=\"data/*.jsonl\" Format=\"sharegpt\" />.", (ProjectFile, 0, 0));
            return;
        }
        foreach (var item in Datasets)
        {
            var at = Item("FineTuneDataset", item.ItemSpec);
            if (!File.Exists(item.GetMetadata("FullPath")))
                Error("FT6007", $"Dataset file '{item.ItemSpec}' does not exist. Fix the FineTuneDataset Include or add the file.", at);
            var format = item.GetMetadata("Format");
            if (string.IsNullOrEmpty(format))
                Error("FT6008", $"FineTuneDataset '{item.ItemSpec}' has no Format. Set Format to one of {string.Join(", ", KnownFormats)}.", at);
            else if (!KnownFormats.Contains(format))
                Error("FT6008", $"FineTuneDataset '{item.ItemSpec}' has unknown Format '{format}'. Use one of {string.Join(", ", KnownFormats)}.", at);
        }
    }

    private void ValidateSingle(ITaskItem[] items, string itemType, string code, string example)
    {
        if (items.Length == 0)
            Error(code, $"The project has no {itemType} item. Add <{itemType} Include=\"{example}\" />.", (ProjectFile, 0, 0));
        else if (items.Length > 1)
            Error(code, $"The project has {items.Length} {itemType} items ({string.Join(", ", items.Select(i => i.ItemSpec))}); exactly one is allowed.", Item(itemType, items[1].ItemSpec));
    }

    private (string File, int Line, int Column) Property(string name)
    {
        var (line, col) = ProjectLocation.Find(ProjectFile, "<" + name + ">");
        return (ProjectFile, line, col);
    }

    private (string File, int Line, int Column) Item(string type, string include)
    {
        var (line, col) = ProjectLocation.Find(ProjectFile, "\"" + include + "\"");
        if (line == 0) (line, col) = ProjectLocation.Find(ProjectFile, "<" + type);
        return (ProjectFile, line, col);
    }

    private void Error(string code, string message, (string File, int Line, int Column) at) =>
        Log.LogError(null, code, null, at.File, at.Line, at.Column, 0, 0, message);
}
