using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Formatting;

public class DatasetFormatterTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly ChatTemplate ChatMl = ChatTemplates.Resolve("chatml", "/");
    public void Dispose() => _dir.Dispose();

    private string Alpaca(string name, int rows, Func<int, string>? output = null) =>
        _dir.Write(name, string.Concat(Enumerable.Range(1, rows).Select(i => $"{{\"instruction\": \"Q{i}\", \"output\": \"{(output ?? (j => $"A{j}"))(i)}\"}}\n")));

    [Fact]
    public void Validation_items_go_to_validation()
    {
        var train = Alpaca("train.jsonl", 3);
        var val = Alpaca("val.jsonl", 2, i => $"V{i}");
        var r = DatasetFormatter.Format([Items.Of(train), Items.Of(val, ("Split", "validation"))], ChatMl, new TrainingConfig { ValidationSplit = 0.5 });
        Assert.Equal(3, r.Train.Count);
        Assert.Equal(2, r.Validation.Count);
        Assert.All(r.Validation, e => Assert.Contains("\nV", e.Text));
    }

    [Fact]
    public void Validation_split_is_seeded_and_keeps_every_row()
    {
        var path = Alpaca("d.jsonl", 40);
        FormattedDataset Run(int seed) => DatasetFormatter.Format([Items.Of(path)], ChatMl, new TrainingConfig { ValidationSplit = 0.1, Seed = seed });
        var a = Run(3407);
        Assert.Equal((36, 4), (a.Train.Count, a.Validation.Count));
        Assert.Equal(a.Validation.Select(e => e.Text), Run(3407).Validation.Select(e => e.Text));
        Assert.NotEqual(a.Validation.Select(e => e.Text), Run(1).Validation.Select(e => e.Text));
        var all = a.Train.Concat(a.Validation).Select(e => e.Text).Order().ToList();
        Assert.Equal(40, all.Distinct().Count());
    }

    [Fact]
    public void Train_on_responses_only_false_targets_the_whole_text_and_keeps_the_reply_where_it_is()
    {
        var path = Alpaca("d.jsonl", 1);
        var whole = Assert.Single(DatasetFormatter.Format([Items.Of(path)], ChatMl, new TrainingConfig { TrainOnResponsesOnly = false }).Train);
        var replies = Assert.Single(DatasetFormatter.Format([Items.Of(path)], ChatMl, new TrainingConfig { TrainOnResponsesOnly = true }).Train);
        Assert.Equal([new TextSpan(0, whole.Text.Length)], whole.TargetSpans);
        Assert.Equal(2, whole.ContentSpans.Count);
        // The turn boundaries are the same as with the loss on replies only: held-out prompts are cut there.
        Assert.Equal(replies.Text, whole.Text);
        Assert.Equal(replies.AssistantSpans, whole.AssistantSpans);
        Assert.Equal(replies.AssistantSpans, replies.TargetSpans);
        Assert.EndsWith("<|im_start|>assistant\n", whole.Text[..whole.AssistantSpans[0].Start]);
    }

    [Fact]
    public void Conversation_extension_merges_rows_deterministically_and_uses_each_once()
    {
        var path = _dir.Write("d.jsonl", string.Concat(Enumerable.Range(1, 7).Select(i => $"{{\"instruction\": \"Q{i}\", \"output\": \"A{i}\", \"system\": \"S\"}}\n")));
        var item = Items.Of(path, ("ConversationExtension", "3"));
        var a = DatasetFormatter.Format([item], ChatMl, new TrainingConfig { Seed = 42 }).Train;
        var b = DatasetFormatter.Format([item], ChatMl, new TrainingConfig { Seed = 42 }).Train;
        Assert.Equal(a.Select(e => e.Text), b.Select(e => e.Text));
        Assert.Equal([3, 3, 1], a.Select(e => e.AssistantSpans.Count));
        Assert.All(a, e => Assert.Equal(1, CountOf(e.Text, "<|im_start|>system\nS<|im_end|>")));
        var replies = a.SelectMany(e => e.AssistantSpans.Select(s => e.Text[s.Start..s.End])).Order().ToList();
        Assert.Equal(Enumerable.Range(1, 7).Select(i => $"A{i}<|im_end|>").Order().ToList(), replies);
    }

    [Theory]
    [InlineData("ConversationExtension", "0", "FT1015")]
    [InlineData("ConversationExtension", "two", "FT1015")]
    [InlineData("Split", "test", "FT1016")]
    public void Bad_metadata_is_an_error(string key, string value, string code)
    {
        var path = Alpaca("d.jsonl", 2);
        Assert.Equal(code, Assert.Throws<FineTuneException>(() => DatasetFormatter.Format([Items.Of(path, (key, value))], ChatMl, new TrainingConfig())).Code);
    }

    [Fact]
    public void Only_validation_data_is_an_error()
    {
        var path = Alpaca("d.jsonl", 2);
        Assert.Equal("FT1019", Assert.Throws<FineTuneException>(() => DatasetFormatter.Format([Items.Of(path, ("Split", "validation"))], ChatMl, new TrainingConfig())).Code);
    }

    [Fact]
    public void Lint_warns_about_duplicates_empty_replies_and_class_imbalance()
    {
        var dup = _dir.Write("dup.jsonl", "{\"instruction\": \"Q\", \"output\": \"A\"}\n{\"instruction\": \"E\", \"output\": \"\"}\n{\"instruction\": \"Q\", \"output\": \"A\"}\n");
        var csv = _dir.Write("c.csv", "text,label\n" + string.Concat(Enumerable.Range(1, 10).Select(i => $"t{i},{(i == 1 ? "no" : "yes")}\n")));
        var r = DatasetFormatter.Format([Items.Of(dup), Items.Of(csv, ("Prompt", "{text}"), ("Response", "{label}"))], ChatMl, new TrainingConfig());
        Assert.Equal(
        [
            ("FT1502", dup, 2),
            ("FT1503", csv, 0),
            ("FT1501", dup, 3),
        ], r.Warnings.Select(w => (w.Code, w.File!, w.Line)));
        Assert.Contains("dup.jsonl line 1", r.Warnings[2].Message);
        Assert.Contains("'yes': 9, 'no': 1", r.Warnings[1].Message);
        Assert.StartsWith($"{dup}(2): warning FT1502: ", r.Warnings[0].ToString());
    }

    [Fact]
    public void Balanced_classes_give_no_warning()
    {
        var csv = _dir.Write("c.csv", "text,label\n" + string.Concat(Enumerable.Range(1, 10).Select(i => $"t{i},{(i % 2 == 0 ? "no" : "yes")}\n")));
        Assert.Empty(DatasetFormatter.Format([Items.Of(csv, ("Prompt", "{text}"), ("Response", "{label}"))], ChatMl, new TrainingConfig()).Warnings);
    }

    [Fact]
    public void Request_file_round_trip_writes_train_and_validation_jsonl()
    {
        var data = Alpaca("d.jsonl", 4);
        var lora = _dir.Write("lora.yaml", "validation_split: 0.25\nseed: 7\n");
        var request = _dir.Write("request.json", System.Text.Json.JsonSerializer.Serialize(new
        {
            projectDir = _dir.Path,
            chatTemplate = "llama-3",
            loraConfig = lora,
            datasets = new[] { new { path = "d.jsonl", fullPath = data, metadata = new Dictionary<string, string> { ["Format"] = "alpaca", ["System"] = "Be brief." } } },
        }));
        var result = DatasetFormatter.Format(FormatRequest.Load(request));
        var outDir = Path.Combine(_dir.Path, "out");
        DatasetFormatter.Write(result, outDir);
        var train = FormattedDatasetFile.Read(Path.Combine(outDir, "train.jsonl")).ToList();
        var validation = FormattedDatasetFile.Read(Path.Combine(outDir, "validation.jsonl")).ToList();
        Assert.Equal((3, 1), (train.Count, validation.Count));
        Assert.All(train.Concat(validation), e => Assert.StartsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>", e.Text));
        Assert.Equal(result.Train, train, (x, y) => x.Text == y.Text && x.AssistantSpans.SequenceEqual(y.AssistantSpans) && x.ContentSpans.SequenceEqual(y.ContentSpans));
    }

    [Fact]
    public void Malformed_request_is_an_error()
    {
        var request = _dir.Write("request.json", "{\"projectDir\": 3}");
        Assert.Equal("FT1017", Assert.Throws<FineTuneException>(() => FormatRequest.Load(request)).Code);
    }

    private static int CountOf(string text, string what) => (text.Length - text.Replace(what, "").Length) / what.Length;
}
