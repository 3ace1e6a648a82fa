using System.Text.Json;
using System.Text.Json.Nodes;

namespace FineTune.Data.Tests.Support;

/// <summary>
/// Renders Ollama templates with Go's real text/template through eng/gotemplate, which fills the
/// variables as Ollama's server does. The program is built once per test run.
/// </summary>
internal static class GoTemplateRenderer
{
    private const string InstallHint = "Install Go (Debian: apt-get install -y golang-go); .ci/run installs it.";
    private static readonly Lazy<string> Binary = new(Build);

    private static string Build()
    {
        var output = Path.Combine(AppContext.BaseDirectory, "gotemplate-bin", "gotemplate");
        ExternalTool.Run("go", ["build", "-o", output, "."], null, RepoPaths.Combine("eng", "gotemplate"), InstallHint);
        return output;
    }

    /// <summary>
    /// Renders each (template, messages) pair as Ollama does; with <paramref name="legacy"/> through
    /// the per-turn .System/.Prompt/.Response path instead of .Messages.
    /// </summary>
    public static IReadOnlyList<string> Render(IReadOnlyList<(string Template, IReadOnlyList<Message> Messages)> cases, bool legacy = false)
    {
        var input = new JsonArray(cases.Select(c => (JsonNode)new JsonObject
        {
            ["template"] = c.Template,
            ["messages"] = Json.Messages(c.Messages),
            ["legacy"] = legacy,
        }).ToArray());
        var stdout = ExternalTool.Run(Binary.Value, [], input.ToJsonString(), RepoPaths.Root, InstallHint);
        return Json.Outputs(stdout, "Go text/template");
    }
}

/// <summary>Renders Jinja templates with @huggingface/jinja through eng/template-fixtures/render.mjs.</summary>
internal static class JinjaRenderer
{
    public static IReadOnlyList<string> Render(IReadOnlyList<(string Template, IReadOnlyList<Message> Messages, string BosToken, string EosToken, bool AddGenerationPrompt)> cases)
    {
        var input = new JsonArray(cases.Select(c => (JsonNode)new JsonObject
        {
            ["template"] = c.Template,
            ["messages"] = Json.Messages(c.Messages),
            ["bos_token"] = c.BosToken,
            ["eos_token"] = c.EosToken,
            ["add_generation_prompt"] = c.AddGenerationPrompt,
        }).ToArray());
        var stdout = ExternalTool.Run("node", [RepoPaths.Combine("eng", "template-fixtures", "render.mjs")], input.ToJsonString(), RepoPaths.Root,
            "Install Node.js and run `npm ci` in the repository root; .ci/run does both.");
        return Json.Outputs(stdout, "@huggingface/jinja");
    }
}

internal static class Json
{
    public static JsonArray Messages(IReadOnlyList<Message> messages) =>
        new(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role.ToString().ToLowerInvariant(), ["content"] = m.Content }).ToArray());

    public static IReadOnlyList<string> Outputs(string stdout, string renderer)
    {
        var results = JsonNode.Parse(stdout)!.AsArray();
        return results.Select((r, i) => r!["error"] is { } error
            ? throw new InvalidOperationException($"{renderer} failed on case {i}: {error.GetValue<string>()}")
            : r["output"]!.GetValue<string>()).ToList();
    }

    public static Conversation Conversation(JsonNode messages) =>
        new(messages.AsArray().Select(m => new Message(Enum.Parse<Role>(m!["role"]!.GetValue<string>(), ignoreCase: true), m["content"]!.GetValue<string>())).ToList());
}
