using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Templates;

/// <summary>
/// The Jinja chat_template each template writes into the GGUF, rendered by @huggingface/jinja, must
/// reproduce the training text (with BOS) and the prompt with add_generation_prompt.
/// </summary>
public class GeneratedJinjaTests
{
    [Theory]
    [MemberData(nameof(OllamaTemplateTests.Templates), MemberType = typeof(OllamaTemplateTests))]
    public void Jinja_template_renders_the_training_text(string name)
    {
        var template = ChatTemplates.Resolve(name, RepoPaths.Root);
        var cases = new List<(string, IReadOnlyList<Message>, string, string, bool)>();
        var expected = new List<string>();
        // Jinja templates see messages as given (no merging of consecutive roles), like the models' own.
        foreach (var conversation in new[] { Conversations.TwoTurnWithSystem, Conversations.TwoTurnNoSystem })
        {
            var example = template.Render(conversation);
            cases.Add((template.JinjaTemplate, conversation.Messages, template.BosText ?? "", template.EosText, false));
            expected.Add(example.Text);
            cases.Add((template.JinjaTemplate, conversation.Messages.SkipLast(1).ToList(), template.BosText ?? "", template.EosText, true));
            expected.Add(example.Text[..example.AssistantSpans[^1].Start]);
        }
        Assert.Equal(expected, JinjaRenderer.Render(cases));
    }
}
