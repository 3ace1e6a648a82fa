namespace FineTune.Ollama.Tests.Publishing;

/// <summary>
/// A fact that runs only against a real Ollama server named by <c>FINETUNE_OLLAMA_TEST_HOST</c>; without
/// it the test is reported as skipped (visible in the test summary), not silently passed.
/// </summary>
public sealed class RealOllamaFactAttribute : FactAttribute
{
    public const string Variable = "FINETUNE_OLLAMA_TEST_HOST";

    public RealOllamaFactAttribute()
    {
        if (string.IsNullOrWhiteSpace(Host))
            Skip = $"set {Variable}=http://host:11434 to run against a real Ollama server";
    }

    public static string? Host => Environment.GetEnvironmentVariable(Variable);
}
