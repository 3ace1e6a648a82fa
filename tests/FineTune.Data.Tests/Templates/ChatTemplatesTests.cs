using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;

namespace FineTune.Data.Tests.Templates;

public class ChatTemplatesTests
{
    [Fact]
    public void Built_in_names_resolve_case_insensitively()
    {
        Assert.Equal(9, ChatTemplates.BuiltInNames.Count);
        foreach (var name in ChatTemplates.BuiltInNames)
            Assert.Equal(name, ChatTemplates.Resolve(name.ToUpperInvariant(), "/").Name);
    }

    [Fact]
    public void A_generic_format_bound_to_a_tokenizer_ends_replies_with_its_eos_everywhere()
    {
        var tokens = new TemplateTokens("<|end_of_text|>", new HashSet<string> { "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>" }, "tokenizer.json");
        foreach (var name in new[] { "alpaca", "vicuna" })
        {
            var t = ChatTemplates.Resolve(name, "/", tokens);
            var e = t.Render(new Conversation([new(Role.User, "Hi"), new(Role.Assistant, "Yo")]));
            var reply = e.AssistantSpans.Single();
            Assert.Equal("Yo<|end_of_text|>", e.Text[reply.Start..reply.End]);
            Assert.Equal("<|end_of_text|>", t.StopTokens[0]);
            Assert.Equal("<|end_of_text|>", t.EosText);
            foreach (var text in new[] { e.Text, t.OllamaTemplate, t.JinjaTemplate, string.Join(" ", t.StopTokens) })
                Assert.DoesNotContain("</s>", text);
            Assert.Contains("<|end_of_text|>", t.OllamaTemplate);
            Assert.Contains("<|end_of_text|>", t.JinjaTemplate);
        }
    }

    [Fact]
    public void A_tokenizer_without_an_eos_token_cannot_carry_a_generic_format()
    {
        var ex = Assert.Throws<FineTuneException>(() => ChatTemplates.Resolve("alpaca", "/", new TemplateTokens(null, new HashSet<string>(), "/m/tokenizer.json")));
        Assert.Equal("FT1023", ex.Code);
        Assert.Equal("/m/tokenizer.json", ex.File);
        Assert.Contains("names no eos_token", ex.Message);
    }

    [Fact]
    public void Llama3_two_turn_text_and_spans_by_hand()
    {
        var t = ChatTemplates.Resolve("llama-3", "/");
        var e = t.Render(new Conversation([new(Role.User, "Hi"), new(Role.Assistant, "Yo")]));
        const string expected = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>";
        Assert.Equal(expected, e.Text);
        var yo = expected.IndexOf("Yo", StringComparison.Ordinal);
        Assert.Equal([new TextSpan(yo, expected.Length)], e.AssistantSpans);
        Assert.Equal([new TextSpan(expected.IndexOf("Hi", StringComparison.Ordinal), expected.IndexOf("Hi", StringComparison.Ordinal) + 2), new TextSpan(yo, yo + 2)], e.ContentSpans);
        Assert.Equal("<|begin_of_text|>", t.BosText);
        Assert.Equal("<|eot_id|>", t.StopTokens[0]);
    }

    [Fact]
    public void Content_spans_cover_exactly_the_message_contents()
    {
        var t = ChatTemplates.Resolve("mistral", "/");
        var e = t.Render(Conversations.Merged);
        var contents = e.ContentSpans.Select(s => e.Text[s.Start..s.End]).ToList();
        Assert.Equal(Conversations.Merged.Messages.Select(m => m.Content).ToList(), contents);
    }

    [Fact]
    public void Raw_text_is_all_target_between_bos_and_eos()
    {
        var t = ChatTemplates.Resolve("chatml", "/");
        var e = t.Render(Conversation.FromRawText("Once upon a time."));
        Assert.Equal("Once upon a time.<|endoftext|>", e.Text);
        Assert.Equal([new TextSpan(0, e.Text.Length)], e.AssistantSpans);
        Assert.Equal([new TextSpan(0, 17)], e.ContentSpans);
    }

    [Fact]
    public void Custom_template_places_system_input_and_output()
    {
        var path = CustomTemplates.Write("tutorial.txt", "{SYSTEM}\nUSER: {INPUT}\nASSISTANT: {OUTPUT}");
        var t = ChatTemplates.Resolve(Path.GetFileName(path), Path.GetDirectoryName(path)!);
        var e = t.Render(new Conversation([new(Role.System, "S"), new(Role.User, "Q"), new(Role.Assistant, "A")]));
        Assert.Equal("S\nUSER: Q\nASSISTANT: A</s>", e.Text);
        Assert.Equal(["</s>", "USER:"], t.StopTokens);
        Assert.Null(t.BosText);
    }

    [Theory]
    [InlineData("USER: {INPUT}\nASSISTANT:", "FT1021", 1, 1)]
    [InlineData("ASSISTANT: {OUTPUT}", "FT1021", 1, 1)]
    [InlineData("A: {OUTPUT}\nU: {INPUT}", "FT1022", 1, 4)]
    [InlineData("U: {INPUT}\n{SYSTEM}\nA: {OUTPUT}", "FT1022", 2, 1)]
    [InlineData("U: {INPUT}\nA: {OUTPUT}\nU: {INPUT}", "FT1022", 3, 4)]
    public void Malformed_custom_template_is_an_error_at_its_location(string text, string code, int line, int column)
    {
        var path = CustomTemplates.Write($"bad-{Guid.NewGuid():N}.txt", text);
        var ex = Assert.Throws<FineTuneException>(() => ChatTemplates.Resolve(path, "/"));
        Assert.Equal((code, path, line, column), (ex.Code, ex.File, ex.Line, ex.Column));
    }

    [Fact]
    public void Unknown_name_lists_the_built_ins()
    {
        var ex = Assert.Throws<FineTuneException>(() => ChatTemplates.Resolve("llama3", "/nonexistent"));
        Assert.Equal("FT1020", ex.Code);
        Assert.Contains("llama-3, chatml, qwen-2.5", ex.Message, StringComparison.Ordinal);
    }
}
