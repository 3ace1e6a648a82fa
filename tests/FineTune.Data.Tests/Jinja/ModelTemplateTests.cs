using FineTune.Core.Diagnostics;
using FineTune.Data.Jinja;
using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Jinja;

/// <summary>
/// The base model's own template as the project's chat template, for every fixture family: the
/// training text is @huggingface/jinja's rendering, the loss spans cover exactly the replies and
/// the end-of-turn token after each, and the Ollama TEMPLATE rendered by Go's text/template equals
/// the Jinja prompt.
/// </summary>
public sealed class ModelTemplateTests
{
    public static IEnumerable<object[]> Families() => TemplateFamilies.Names().Where(n => !Unmaskable.Contains((string)n[0]));

    // Falcon 2's template ends the last reply with no token at all: a model trained on it would
    // never learn to stop, so training on replies only is refused (FT1047).
    private static readonly HashSet<string> Unmaskable = ["falcon-2"];

    [Fact]
    public void A_template_that_ends_replies_with_no_token_fails_with_ft1047_unless_the_loss_covers_everything()
    {
        var f = TemplateFamilies.Get("falcon-2");
        var template = Resolve(f);
        var conversation = new Conversation(f.Cases.First(c => !c.AddGenerationPrompt && c.Output is not null).Messages, "data/train.jsonl", 3);
        var e = Assert.Throws<FineTuneException>(() => template.Render(conversation));
        Assert.Equal(ChatTemplateErrors.Unmaskable, e.Code);
        Assert.Contains("train_on_responses_only: false", e.Message);
        Assert.Contains("data/train.jsonl(3)", e.Message);
        var whole = template.Render(conversation, lossOnReplies: false);
        Assert.Equal([new FineTune.Core.Datasets.TextSpan(0, whole.Text.Length)], whole.TargetSpans);
        // Its replies cannot be located, so none is claimed (no held-out prompt is cut from it).
        Assert.Empty(whole.AssistantSpans);
    }

    internal static ChatTemplate Resolve(Family f) =>
        ChatTemplates.Resolve("model", Path.GetTempPath(), new TemplateTokens(f.EosToken, f.Markers.ToHashSet(), "tokenizer.json",
            f.BosToken, new ModelTemplateSource(f.Template, JinjaSource.Inline)));

    [Theory]
    [MemberData(nameof(Families))]
    public void Training_text_is_the_templates_rendering_and_the_loss_covers_exactly_each_reply_and_its_end_of_turn_token(string family)
    {
        var f = TemplateFamilies.Get(family);
        var template = Resolve(f);
        var checkedCases = 0;
        foreach (var c in f.Cases.Where(c => !c.AddGenerationPrompt))
        {
            var conversation = new Conversation(c.Messages);
            if (c.Output is null)
            {
                Assert.Equal(JinjaErrors.Render, Assert.Throws<FineTuneException>(() => template.Render(conversation)).Code);
                continue;
            }
            var example = template.Render(conversation);
            Assert.Equal(c.Output, example.Text);
            var replies = c.Messages.Where(m => m.Role == Role.Assistant).ToList();
            Assert.Equal(replies.Count, example.AssistantSpans.Count);
            for (var i = 0; i < replies.Count; i++)
            {
                var span = example.Text[example.AssistantSpans[i].Start..example.AssistantSpans[i].End];
                var content = new[] { replies[i].Content, replies[i].Content.Trim(), replies[i].Content.TrimStart() }.First(span.StartsWith);
                var marker = span[content.Length..].TrimStart(' ', '\n');
                Assert.True(f.Markers.Contains(marker) || marker == f.EosToken,
                    $"{family}: reply {i} span {System.Text.Json.JsonSerializer.Serialize(span)} does not end with one end-of-turn token after the reply");
            }
            // Outside the spans there is no reply text.
            var outside = string.Concat(Enumerable.Range(0, example.Text.Length).Where(p => !example.AssistantSpans.Any(s => s.Start <= p && p < s.End)).Select(p => example.Text[p]));
            foreach (var r in replies.Where(r => r.Content.Trim().Length > 3)) Assert.DoesNotContain(r.Content.Trim(), outside);
            // Content spans are dataset text: each is part of some message.
            foreach (var s in example.ContentSpans)
                Assert.Contains(c.Messages, m => m.Content.Contains(example.Text[s.Start..s.End], StringComparison.Ordinal));
            // train_on_responses_only: false moves the loss to the whole text and leaves the replies where they are.
            var whole = template.Render(conversation, lossOnReplies: false);
            Assert.Equal(example.Text, whole.Text);
            Assert.Equal(example.AssistantSpans, whole.AssistantSpans);
            Assert.Equal([new FineTune.Core.Datasets.TextSpan(0, whole.Text.Length)], whole.TargetSpans);
            checkedCases++;
        }
        Assert.True(checkedCases >= 4 || f.Cases.Count(c => c.Output is not null) < 12, $"{family}: only {checkedCases} training conversations checked");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void Chat_prompts_are_the_templates_rendering_with_the_generation_prompt(string family)
    {
        var f = TemplateFamilies.Get(family);
        var template = Resolve(f);
        foreach (var c in f.Cases.Where(c => c.AddGenerationPrompt && c.Output is not null))
            Assert.Equal(c.Output, template.RenderPrompt(new Conversation(c.Messages)).Text);
    }

    // Families whose template places text by more than the role of each turn (Mistral v0.x puts the
    // system prompt into the first user turn only when ... ) cannot be written as a turn-by-turn Go template.
    private static readonly HashSet<string> NotOllamaExpressible = [];

    [Fact]
    public void The_ollama_template_rendered_by_go_equals_the_jinja_prompt_for_every_family_it_covers()
    {
        var cases = new List<(string Template, IReadOnlyList<Message> Messages)>();
        var expected = new List<(string Family, string Text)>();
        var failed = new Dictionary<string, string>();
        foreach (var name in TemplateFamilies.Names().Select(n => (string)n[0]).Where(n => !Unmaskable.Contains(n)))
        {
            var f = TemplateFamilies.Get(name);
            var template = Resolve(f);
            string go;
            try { go = template.OllamaTemplate; }
            catch (FineTuneException e) { failed[name] = e.Message; continue; }
            foreach (var c in f.Cases.Where(c => c.AddGenerationPrompt && c.Output is not null && c.Messages.All(m => m.Content == m.Content.Trim())))
            {
                cases.Add((go, c.Messages));
                var text = c.Output!;
                expected.Add((name, template.BosText is { } bos && text.StartsWith(bos, StringComparison.Ordinal) ? text[bos.Length..] : text));
            }
        }
        var rendered = GoTemplateRenderer.Render(cases);
        var mismatches = expected.Select((e, i) => (e, i)).Where(x => rendered[x.i] != x.e.Text)
            .Select(x => $"{x.e.Family}: go {System.Text.Json.JsonSerializer.Serialize(rendered[x.i])}\n   jinja {System.Text.Json.JsonSerializer.Serialize(x.e.Text)}").ToList();
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
        Assert.True(failed.Keys.ToHashSet().SetEquals(NotOllamaExpressible), "not expressible: " + string.Join("\n", failed.Select(kv => $"{kv.Key}: {kv.Value}")));
    }
}
