using FineTune.Core.Diagnostics;
using FineTune.Data.Jinja;
using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Jinja;

/// <summary>Where a base model keeps its chat template, as transformers reads it, and what a project without one gets.</summary>
public sealed class ModelTemplateSourceTests
{
    private const string Simple = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    [Fact]
    public void Chat_template_in_tokenizer_config_is_found_as_a_string_or_as_the_default_of_a_named_list()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), $$"""{"eos_token": "<|im_end|>", "chat_template": {{System.Text.Json.JsonSerializer.Serialize(Simple)}}}""");
        var found = ModelTemplateSource.Find(dir.Path)!;
        Assert.Equal(Simple, found.Template);
        Assert.Equal(Path.Combine(dir.Path, "tokenizer_config.json"), found.File);

        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"),
            $$"""{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": {{System.Text.Json.JsonSerializer.Serialize(Simple)}}}]}""");
        Assert.Equal(Simple, ModelTemplateSource.Find(dir.Path)!.Template);

        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"chat_template": [{"name": "tool_use", "template": "x"}]}""");
        Assert.Equal(ChatTemplateErrors.BadModelTemplate, Assert.Throws<FineTuneException>(() => ModelTemplateSource.Find(dir.Path)).Code);

        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"eos_token": "</s>"}""");
        Assert.Null(ModelTemplateSource.Find(dir.Path));
    }

    [Fact]
    public void Chat_template_jinja_takes_precedence_and_its_errors_point_at_its_own_lines()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), """{"chat_template": "old"}""");
        File.WriteAllText(Path.Combine(dir.Path, "chat_template.jinja"), "{{ bos_token }}\n{{ messages | wordwrap }}");
        var found = ModelTemplateSource.Find(dir.Path)!;
        Assert.StartsWith("{{ bos_token }}", found.Template);
        var e = Assert.Throws<FineTuneException>(() => Resolve(found));
        Assert.Equal((JinjaErrors.Unsupported, found.File, 2, 13), (e.Code, e.File, e.Line, e.Column));
    }

    [Fact]
    public void A_project_without_a_template_item_on_a_model_without_a_template_is_told_to_add_one()
    {
        var tokens = new TemplateTokens("</s>", new HashSet<string> { "</s>" }, "/models/base/tokenizer.json");
        var e = Assert.Throws<FineTuneException>(() => ChatTemplates.Resolve("model", "/project", tokens));
        Assert.Equal(ChatTemplateErrors.NoModelTemplate, e.Code);
        Assert.Equal("/models/base/tokenizer.json", e.File);
        Assert.Contains("Add a ChatTemplate item naming a built-in template", e.Message);
        Assert.Equal(ChatTemplateErrors.NoModelTemplate, Assert.Throws<FineTuneException>(() => ChatTemplates.Resolve("", "/project", tokens)).Code);
    }

    [Fact]
    public void A_jinja_file_as_the_chat_template_item_is_the_template()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "my.jinja"), Simple);
        var tokens = new TemplateTokens("<|im_end|>", new HashSet<string> { "<|im_start|>", "<|im_end|>" }, "tokenizer.json");
        var template = ChatTemplates.Resolve("my.jinja", dir.Path, tokens);
        var example = template.Render(new Conversation([new Message(Role.User, "Hi"), new Message(Role.Assistant, "Hello")]));
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n", example.Text);
        Assert.Equal("Hello<|im_end|>", example.Text[example.AssistantSpans[0].Start..example.AssistantSpans[0].End]);
        Assert.Equal(["<|im_end|>"], template.StopTokens);
        Assert.Equal(Simple, template.JinjaTemplate);
    }

    [Fact]
    public void Generation_blocks_are_the_loss_spans_when_a_template_has_them()
    {
        const string source = "{% for m in messages %}{% if m.role == 'assistant' %}<|im_start|>assistant\n{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}\n" +
                              "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}";
        var tokens = new TemplateTokens("<|im_end|>", new HashSet<string> { "<|im_start|>", "<|im_end|>" }, "tokenizer.json", null,
            new ModelTemplateSource(source, JinjaSource.Inline));
        var template = ChatTemplates.Resolve("model", "/", tokens);
        Message[] messages = [new(Role.User, "Hi"), new(Role.Assistant, "Hello"), new(Role.User, "More"), new(Role.Assistant, "Sure")];
        var example = template.Render(new Conversation(messages));
        // The text is what @huggingface/jinja renders (it drops the tags; trim_blocks eats the newline after them).
        var context = new System.Text.Json.Nodes.JsonObject { ["messages"] = Json.Messages(messages), ["add_generation_prompt"] = false, ["eos_token"] = "<|im_end|>" };
        Assert.Equal(ContextRenderer.Render([(source, context)])[0].Output, example.Text);
        Assert.Equal(["Hello<|im_end|>", "Sure<|im_end|>"], example.AssistantSpans.Select(s => example.Text[s.Start..s.End]));
    }

    [Fact]
    public void A_template_that_refuses_a_conversation_is_reported_at_the_dataset_row()
    {
        var tokens = new TemplateTokens("<eos>", new HashSet<string> { "<end_of_turn>" }, "tokenizer.json", "<bos>",
            new ModelTemplateSource(TemplateFamilies.Get("gemma-2").Template, new JinjaSource("/m/tokenizer_config.json", false)));
        var template = ChatTemplates.Resolve("model", "/", tokens);
        var e = Assert.Throws<FineTuneException>(() => template.Render(new Conversation(
            [new Message(Role.System, "S"), new Message(Role.User, "u"), new Message(Role.Assistant, "a")], "data/train.jsonl", 7)));
        Assert.Equal((JinjaErrors.Render, "data/train.jsonl", 7), (e.Code, e.File, e.Line));
        Assert.Contains("System role not supported", e.Message);
        Assert.Contains("/m/tokenizer_config.json", e.Message);
    }

    private static ChatTemplate Resolve(ModelTemplateSource source) =>
        ChatTemplates.Resolve("model", "/", new TemplateTokens("</s>", new HashSet<string>(), "tokenizer.json", "<s>", source));
}
