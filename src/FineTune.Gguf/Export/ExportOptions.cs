using FineTune.Gguf.Quantization;

namespace FineTune.Gguf.Export;

/// <summary>What <see cref="GgufExporter.Export"/> writes.</summary>
public sealed record ExportOptions
{
    /// <summary>Hugging Face model folder (config.json, safetensors, tokenizer.json).</summary>
    public required string BaseModel { get; init; }
    /// <summary>PEFT LoRA adapter folder to merge, or null.</summary>
    public string? Adapter { get; init; }
    /// <summary>File type (tensor type mix).</summary>
    public required FileType Type { get; init; }
    /// <summary><c>general.name</c>.</summary>
    public required string Name { get; init; }
    /// <summary><c>general.version</c> (the project's ModelVersion).</summary>
    public required string Version { get; init; }
    /// <summary>Jinja chat template for <c>tokenizer.chat_template</c>, or null.</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>The output .gguf path.</summary>
    public required string Output { get; init; }
    /// <summary>Quantization threads (0 = all processors).</summary>
    public int Threads { get; init; }
    /// <summary>
    /// Test-only: a factor on every projection and output weight before quantization (1 = none), to
    /// make the damaged file the quality gate must reject. Never set by a build outside the tests.
    /// </summary>
    public float TestWeightScale { get; init; } = 1;
}
