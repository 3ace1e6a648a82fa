namespace FineTune.Ollama.Modelfiles;

/// <summary>What goes into a Modelfile, as plain values.</summary>
public sealed record ModelfileSpec
{
    /// <summary>FROM: a path to a GGUF relative to the Modelfile (<c>./model.gguf</c>), or a model already in Ollama (adapter mode).</summary>
    public required string From { get; init; }

    /// <summary>ADAPTER: a path to a LoRA adapter GGUF relative to the Modelfile, or null.</summary>
    public string? Adapter { get; init; }

    /// <summary>TEMPLATE: the Go template Ollama renders prompts with, or null to keep the model's.</summary>
    public string? Template { get; init; }

    /// <summary>Stop sequences; each becomes one <c>PARAMETER stop</c> line.</summary>
    public IReadOnlyList<string> Stops { get; init; } = [];

    /// <summary>SYSTEM: the default system prompt, or null.</summary>
    public string? System { get; init; }

    /// <summary>Other PARAMETERs (name, value as text), in the order to write them.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Parameters { get; init; } = [];

    /// <summary>LICENSE: the license text, or null.</summary>
    public string? License { get; init; }
}
