namespace FineTune.Ollama.Modelfiles;

/// <summary>
/// A parsed Modelfile: its instructions in order, and the values Ollama derives from them
/// (for repeated commands the last one wins, except LICENSE, PARAMETER and MESSAGE, which accumulate).
/// </summary>
public sealed class Modelfile
{
    /// <summary>Wraps parsed instructions.</summary>
    public Modelfile(IReadOnlyList<ModelfileInstruction> instructions) => Instructions = instructions;

    /// <summary>Every instruction, in file order.</summary>
    public IReadOnlyList<ModelfileInstruction> Instructions { get; }

    /// <summary>The values of every FROM line.</summary>
    public IReadOnlyList<string> Froms => Values("FROM");

    /// <summary>The last ADAPTER, or null.</summary>
    public string? Adapter => Last("ADAPTER");

    /// <summary>The last TEMPLATE, or null.</summary>
    public string? Template => Last("TEMPLATE");

    /// <summary>The last SYSTEM, or null.</summary>
    public string? System => Last("SYSTEM");

    /// <summary>Every LICENSE, in order.</summary>
    public IReadOnlyList<string> Licenses => Values("LICENSE");

    /// <summary>Every PARAMETER as (name, value), in order; <c>stop</c> may repeat.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Parameters =>
        Instructions.Where(x => x.Command == "PARAMETER").Select(x => KeyValuePair.Create(x.Key!, x.Value)).ToList();

    /// <summary>Every MESSAGE as (role, content), in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Messages =>
        Instructions.Where(x => x.Command == "MESSAGE").Select(x => KeyValuePair.Create(x.Key!, x.Value)).ToList();

    /// <summary>The first instruction with <paramref name="command"/>, for error locations.</summary>
    public ModelfileInstruction? Find(string command) => Instructions.FirstOrDefault(x => x.Command == command);

    private string? Last(string command) => Instructions.LastOrDefault(x => x.Command == command)?.Value;

    private List<string> Values(string command) => Instructions.Where(x => x.Command == command).Select(x => x.Value).ToList();
}
