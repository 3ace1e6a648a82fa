using System.Reflection;

namespace FineTune.Cli.Init;

/// <summary>
/// The files <c>finetune init</c> writes, rendered from the templates embedded in the tool
/// (Init/Templates). Placeholders are <c>__NAME__</c> tokens because the workflow template is full of
/// GitHub's own <c>${{ }}</c> expressions.
/// </summary>
public static class ModelRepositoryTemplate
{
    private static readonly (string Resource, Func<Settings, string> Path)[] Files =
    [
        ("project.csproj.template", s => s.ModelName + ".csproj"),
        ("lora.yaml", _ => "lora.yaml"),
        ("train.jsonl", _ => "data/train.jsonl"),
        ("gitignore", _ => ".gitignore"),
        ("build.yml", _ => ".github/workflows/build.yml"),
        ("README.md", _ => "README.md"),
    ];

    /// <summary>What the generated repository is parameterised by.</summary>
    /// <param name="ModelName">The model's name (project file name, ModelName, Ollama name).</param>
    /// <param name="PackageVersion">Version of the FineTune.Build package to reference.</param>
    /// <param name="BaseModel">Project-relative folder of the base model.</param>
    public sealed record Settings(string ModelName, string PackageVersion, string BaseModel);

    /// <summary>Relative path (with '/') and content of every file, in a stable order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Render(Settings settings) =>
        [.. Files.Select(f => new KeyValuePair<string, string>(f.Path(settings), Fill(ReadTemplate(f.Resource), settings)))];

    private static string Fill(string template, Settings s) => template
        .Replace("__MODEL_NAME__", s.ModelName, StringComparison.Ordinal)
        .Replace("__TOOL_VERSION__", s.PackageVersion, StringComparison.Ordinal)
        .Replace("__BASE_MODEL__", s.BaseModel, StringComparison.Ordinal);

    private static string ReadTemplate(string name)
    {
        var resource = "FineTune.Cli.Init.Templates." + name;
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Template resource '{resource}' is missing from the tool assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
