using System.Text.Json.Nodes;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Jinja;

/// <summary>
/// eng/template-fixtures/families.json: real chat templates of model families and what
/// @huggingface/jinja renders for each conversation (regenerate: node eng/template-fixtures/families.mjs).
/// </summary>
internal static class TemplateFamilies
{
    private static readonly Lazy<JsonArray> All = new(() =>
        JsonNode.Parse(File.ReadAllText(RepoPaths.Combine("eng", "template-fixtures", "families.json")))!.AsArray());

    public static IEnumerable<object[]> Names() => All.Value.Select(f => new object[] { f!["family"]!.GetValue<string>() });

    public static Family Get(string name)
    {
        var f = All.Value.First(x => x!["family"]!.GetValue<string>() == name)!;
        var cases = f["cases"]!.AsArray().Select(c => new FamilyCase(
            c!["messages"]!.AsArray().Select(m => new Message(Enum.Parse<Role>(m!["role"]!.GetValue<string>(), true), m["content"]!.GetValue<string>())).ToList(),
            c["messages"]!.DeepClone(),
            c["add_generation_prompt"]!.GetValue<bool>(),
            c["output"]?.GetValue<string>(),
            c["error"]?.GetValue<string>())).ToList();
        var context = f["context"]!.AsObject().ToDictionary(kv => kv.Key, kv => (object?)kv.Value!.GetValue<string>());
        return new Family(name, f["source"]!.GetValue<string>(), f["template"]!.GetValue<string>(), f["bos_token"]!.GetValue<string>(),
            f["eos_token"]!.GetValue<string>(), f["markers"]!.AsArray().Select(m => m!.GetValue<string>()).ToList(), context,
            DateTimeOffset.Parse(f["now"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture), cases);
    }
}

internal sealed record Family(string Name, string Source, string Template, string BosToken, string EosToken, IReadOnlyList<string> Markers,
    IReadOnlyDictionary<string, object?> Context, DateTimeOffset Now, IReadOnlyList<FamilyCase> Cases)
{
    public Dictionary<string, object?> ContextFor(FamilyCase c) => new(Context)
    {
        ["messages"] = c.MessagesJson,
        ["add_generation_prompt"] = c.AddGenerationPrompt,
        ["bos_token"] = BosToken,
        ["eos_token"] = EosToken,
    };
}

internal sealed record FamilyCase(IReadOnlyList<Message> Messages, JsonNode MessagesJson, bool AddGenerationPrompt, string? Output, string? Error);
