using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Templates;

/// <summary>
/// Every template's Ollama TEMPLATE, rendered by Go's text/template with the variables Ollama
/// fills, must give exactly the training text's prompt for each turn (after the BOS text, which
/// Ollama adds as a token itself).
/// </summary>
public class OllamaTemplateTests
{
    public static TheoryData<string> Templates()
    {
        var data = new TheoryData<string>();
        foreach (var name in ChatTemplates.BuiltInNames) data.Add(name);
        data.Add(CustomTemplates.UserAssistantPath);
        data.Add(CustomTemplates.NoSystemPath);
        return data;
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public void Prompt_for_every_turn_matches_training_text(string name)
    {
        var template = ChatTemplates.Resolve(name, RepoPaths.Root);
        var cases = new List<(string, IReadOnlyList<Message>)>();
        var expected = new List<string>();
        foreach (var conversation in Conversations.All)
        {
            var example = template.Render(conversation);
            var bos = template.BosText ?? "";
            Assert.StartsWith(bos, example.Text, StringComparison.Ordinal);

            // Each assistant reply k: Ollama gets the messages before it and must produce the
            // training text up to where the reply starts.
            var replyIndexes = conversation.Messages.Select((m, i) => (m, i)).Where(x => x.m.Role == Role.Assistant).Select(x => x.i).ToList();
            var spans = example.AssistantSpans;
            Assert.Equal(Collated(conversation).Count(r => r == Role.Assistant), spans.Count);
            var spanIndex = 0;
            foreach (var i in replyIndexes)
            {
                if (i + 1 < conversation.Messages.Count && conversation.Messages[i + 1].Role == Role.Assistant) continue;
                cases.Add((template.OllamaTemplate, conversation.Messages.Take(i).ToList()));
                expected.Add(example.Text[bos.Length..spans[spanIndex++].Start]);
            }
            // The whole conversation: Ollama leaves a trailing reply open (no end marker) so the
            // model continues it.
            var last = spans[^1];
            cases.Add((template.OllamaTemplate, conversation.Messages));
            expected.Add(example.Text[bos.Length..(last.End - template.StopTokens[0].Length)]);
        }

        var rendered = GoTemplateRenderer.Render(cases);
        Assert.Equal(expected, rendered);
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public void Single_turn_prompt_through_System_Prompt_Response_matches_training_text(string name)
    {
        var template = ChatTemplates.Resolve(name, RepoPaths.Root);
        var cases = new List<(string, IReadOnlyList<Message>)>();
        var expected = new List<string>();
        foreach (var conversation in new[] { Conversations.TwoTurnWithSystem, Conversations.TwoTurnNoSystem })
        {
            var singleTurn = new Conversation(conversation.Messages.TakeWhile(m => m.Role != Role.Assistant).Append(conversation.Messages.First(m => m.Role == Role.Assistant)).ToList());
            var example = template.Render(singleTurn);
            var bos = template.BosText ?? "";
            var reply = example.AssistantSpans.Single();
            cases.Add((template.OllamaTemplate, singleTurn.Messages.SkipLast(1).ToList()));
            expected.Add(example.Text[bos.Length..reply.Start]);
            cases.Add((template.OllamaTemplate, singleTurn.Messages));
            expected.Add(example.Text[bos.Length..(reply.End - template.StopTokens[0].Length)]);
        }
        Assert.Equal(expected, GoTemplateRenderer.Render(cases, legacy: true));
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public void Every_reply_ends_with_the_first_stop_token_and_the_template_has_no_bos(string name)
    {
        var template = ChatTemplates.Resolve(name, RepoPaths.Root);
        var example = template.Render(Conversations.TwoTurnWithSystem);
        foreach (var span in example.AssistantSpans)
            Assert.EndsWith(template.StopTokens[0], example.Text[span.Start..span.End], StringComparison.Ordinal);
        if (template.BosText is { } bos) Assert.DoesNotContain(bos, template.OllamaTemplate, StringComparison.Ordinal);
    }

    private static IEnumerable<Role> Collated(Conversation c) =>
        c.Messages.Where((m, i) => m.Role != Role.System && (i == 0 || c.Messages[i - 1].Role != m.Role)).Select(m => m.Role);
}
