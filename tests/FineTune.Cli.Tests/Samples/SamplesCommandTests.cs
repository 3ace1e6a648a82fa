using System.Text.Json;
using FineTune.Cli.Tests.Chat;
using FineTune.Core.Datasets;
using FineTune.Data;
using FineTune.Data.Templates;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Cli.Tests.Samples;

public class SamplesCommandTests
{
    private static readonly ChatTemplate Llama3 = ChatTemplates.Resolve("llama-3", ".");

    /// <summary>
    /// The hand-wired model says " Paris" only right after the assistant header and then
    /// &lt;|eot_id|&gt;, otherwise "?" until the token limit: a reply of " Paris" ending at the stop
    /// token proves the prompt was cut where the reply begins, with the template's header.
    /// </summary>
    [Fact]
    public void Held_out_prompts_are_answered_before_and_after_through_the_template()
    {
        using var dir = new TempDir();
        var answer = ChatFixture.SingleToken(" Paris");
        ChatFixture.WriteWiredModel(dir.File("model"), answer, ChatFixture.SingleToken("?"));
        // PEFT's initialisation (B = 0): the adapted model must answer exactly as the base model.
        var config = ModelConfig.Load(dir.File("model"));
        var adapter = new LoraAdapter(config, new LoraSettings(4, 8, 0, false, Projections.All));
        adapter.Initialize(1);
        adapter.Save(dir.File("adapter"), "model");
        WriteValidation(dir.File("formatted"),
            Conversation("Capital of France?", "Paris."),
            Conversation("And of <|eot_id|> Italy?", "Rome."),
            Conversation("Not asked: beyond --count.", "-"));

        var (code, output) = Run(dir, "--count", "2", "--max-tokens", "8");
        Assert.True(code == 0, output);
        Assert.Contains("samples: 2 held-out prompts; ended at a stop token: before 2/2, after 2/2", output);

        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("samples.json")));
        var items = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal("Capital of France?", items[0].GetProperty("prompt").GetString());
        Assert.Equal("And of <|eot_id|> Italy?", items[1].GetProperty("prompt").GetString());
        Assert.Equal("Rome.", items[1].GetProperty("reference").GetString());
        foreach (var item in items)
        {
            Assert.Equal(" Paris", item.GetProperty("before").GetString());
            Assert.Equal(" Paris", item.GetProperty("after").GetString());
            Assert.Equal("stop token", item.GetProperty("after_end").GetString());
            Assert.EndsWith("<|start_header_id|>assistant<|end_header_id|>\n\n", item.GetProperty("prompt_text").GetString());
        }
    }

    [Fact]
    public async Task No_validation_examples_give_an_empty_list_and_the_report_says_so()
    {
        using var dir = new TempDir();
        WriteValidation(dir.File("formatted"));
        Directory.CreateDirectory(dir.File("model"));
        Directory.CreateDirectory(dir.File("adapter"));
        var (code, output) = Run(dir);
        Assert.True(code == 0, output);
        Assert.Equal("[]", File.ReadAllText(dir.File("samples.json")).Trim());
        Assert.Contains("samples: no held-out prompts: the validation split is empty", output);

        Reports.ReportFixture.Write(dir, withSamples: false);
        Assert.Equal(0, (await CliApp.RunAsync(["report", "--train-dir", dir.File("train"), "--stats", dir.File("stats.json"), "--config", dir.File("lora.yaml"),
            "--samples", dir.File("samples.json"), "--out", dir.File("report.html")])));
        Assert.Contains("No held-out prompts: the validation split is empty", File.ReadAllText(dir.File("report.html")));
    }

    [Fact]
    public void Loss_on_whole_conversations_leaves_the_same_held_out_prompts_as_loss_on_replies()
    {
        using var dir = new TempDir();
        ChatFixture.WriteWiredModel(dir.File("model"), ChatFixture.SingleToken(" Paris"), ChatFixture.SingleToken("?"));
        var config = ModelConfig.Load(dir.File("model"));
        var adapter = new LoraAdapter(config, new LoraSettings(4, 8, 0, false, Projections.All));
        adapter.Initialize(1);
        adapter.Save(dir.File("adapter"), "model");
        var conversation = Conversation("Capital of France?", "Paris.");
        // What the formatter writes for train_on_responses_only: false.
        Directory.CreateDirectory(dir.File("formatted"));
        FormattedDatasetFile.Write(dir.File("formatted/validation.jsonl"), [Llama3.Render(conversation, lossOnReplies: false)]);

        var (code, output) = Run(dir, "--max-tokens", "8");
        Assert.True(code == 0, output);
        Assert.Contains("samples: 1 held-out prompts; ended at a stop token: before 1/1, after 1/1", output);
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("samples.json")));
        var item = Assert.Single(json.RootElement.EnumerateArray());
        Assert.Equal("Capital of France?", item.GetProperty("prompt").GetString());
        Assert.Equal("Paris.", item.GetProperty("reference").GetString());
        Assert.EndsWith("<|start_header_id|>assistant<|end_header_id|>\n\n", item.GetProperty("prompt_text").GetString());
    }

    [Fact]
    public void Validation_examples_with_no_reply_to_hold_out_are_named_as_the_cause_not_an_empty_split()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("formatted"));
        FormattedDatasetFile.Write(dir.File("formatted/validation.jsonl"),
            [Llama3.Render(FineTune.Data.Conversation.FromRawText("Plain text, no turns.")), Llama3.Render(FineTune.Data.Conversation.FromRawText("More."))]);
        Directory.CreateDirectory(dir.File("model"));
        Directory.CreateDirectory(dir.File("adapter"));
        var (code, output) = Run(dir);
        Assert.True(code == 0, output);
        Assert.Contains("samples: no held-out prompts: none of the 2 validation examples has an assistant reply after a prompt to hold out", output);
        Assert.DoesNotContain("split is empty", output);
        Assert.Equal("[]", File.ReadAllText(dir.File("samples.json")).Trim());
    }

    [Theory]
    [InlineData("--count", "-1")]
    [InlineData("--max-tokens", "0")]
    public void Bad_count_or_token_limit_is_FT7011(string option, string value)
    {
        using var dir = new TempDir();
        var (code, output) = Run(dir, option, value);
        Assert.Equal(1, code);
        Assert.Contains("error FT7011:", output);
        Assert.False(File.Exists(dir.File("samples.json")));
    }

    private static (int, string) Run(TempDir dir, params string[] extra) =>
        ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "samples", "--base-model", dir.File("model"), "--adapter", dir.File("adapter"),
            "--data", dir.File("formatted"), "--chat-template", "llama-3", "--out", dir.File("samples.json"), .. extra]);

    private static Conversation Conversation(string user, string reply) =>
        new([new Message(Role.System, "Answer briefly."), new Message(Role.User, user), new Message(Role.Assistant, reply)]);

    private static void WriteValidation(string dir, params Conversation[] conversations)
    {
        Directory.CreateDirectory(dir);
        FormattedDatasetFile.Write(Path.Combine(dir, "validation.jsonl"), conversations.Select(Llama3.Render));
    }
}
