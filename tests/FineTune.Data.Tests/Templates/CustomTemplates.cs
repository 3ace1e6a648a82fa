namespace FineTune.Data.Tests.Templates;

/// <summary>Custom template files written once per test run.</summary>
internal static class CustomTemplates
{
    private static readonly string Dir = Directory.CreateTempSubdirectory("finetune-templates-").FullName;

    /// <summary>The tutorial's Vicuna-like custom template, with a literal <c>{{</c> to exercise escaping.</summary>
    public static string UserAssistantPath { get; } = Write("user-assistant.txt", "{SYSTEM}\nUSER: {INPUT}\nASSISTANT: {{OUTPUT}}\n");

    /// <summary>An Alpaca-like template without a system placeholder.</summary>
    public static string NoSystemPath { get; } = Write("no-system.txt", "### Instruction:\n{INPUT}\n\n### Response:\n{OUTPUT}\n\n");

    public static string Write(string name, string text)
    {
        var path = Path.Combine(Dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
