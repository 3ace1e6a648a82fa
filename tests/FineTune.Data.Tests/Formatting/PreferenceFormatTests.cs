using ClosedXML.Excel;
using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Formatting;

/// <summary>
/// Format="preference": TRL's prompt/chosen/rejected rows, rendered with the chat template as TRL's
/// maybe_apply_chat_template does (the prompt with its generation prompt, then each completion), the
/// loss only on the completion. Expected texts are ChatML as its specification writes it.
/// </summary>
public sealed class PreferenceFormatTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly ChatTemplate ChatMl = ChatTemplates.Resolve("chatml", "/");
    private static readonly TrainingConfig Dpo = new() { Trainer = "dpo" };
    public void Dispose() => _dir.Dispose();

    private static string Loss(FormattedExample e) => string.Concat(e.AssistantSpans.Select(s => e.Text[s.Start..s.End]));

    [Fact]
    public void Text_rows_become_a_user_prompt_and_assistant_completions_with_the_items_system_prompt()
    {
        var path = _dir.Write("pairs.jsonl", """
            {"prompt": "Shout hi", "chosen": "HI", "rejected": "hi"}
            {"prompt": "Shout yes", "chosen": "YES", "rejected": "yes", "system": "Row system"}
            """ + "\n");
        var r = DatasetFormatter.Format([Items.Of(path, ("Format", "preference"), ("System", "Be loud."))], ChatMl, Dpo);
        Assert.Empty(r.Train);
        Assert.Equal(2, r.PreferenceTrain.Count);
        var first = r.PreferenceTrain[0];
        Assert.Equal("<|im_start|>system\nBe loud.<|im_end|>\n<|im_start|>user\nShout hi<|im_end|>\n<|im_start|>assistant\nHI<|im_end|>\n", first.Chosen.Text);
        Assert.Equal("<|im_start|>system\nBe loud.<|im_end|>\n<|im_start|>user\nShout hi<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>\n", first.Rejected.Text);
        Assert.Equal("HI<|im_end|>", Loss(first.Chosen));
        Assert.Equal("hi<|im_end|>", Loss(first.Rejected));
        Assert.StartsWith("<|im_start|>system\nRow system<|im_end|>", r.PreferenceTrain[1].Chosen.Text);
    }

    [Fact]
    public void Conversation_rows_keep_earlier_assistant_turns_out_of_the_loss()
    {
        var path = _dir.Write("pairs.jsonl", """
            {"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}], "chosen": [{"role": "assistant", "content": "GOOD"}], "rejected": [{"role": "assistant", "content": "bad"}]}
            """ + "\n");
        var pair = Assert.Single(DatasetFormatter.Format([Items.Of(path, ("Format", "preference"))], ChatMl, Dpo).PreferenceTrain);
        Assert.Equal("<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\nGOOD<|im_end|>\n", pair.Chosen.Text);
        Assert.Equal("GOOD<|im_end|>", Loss(pair.Chosen));
        Assert.Equal("bad<|im_end|>", Loss(pair.Rejected));
    }

    /// <summary>TRL's implicit-prompt form (Anthropic HH style): whole chosen and rejected conversations, the shared leading messages being the prompt.</summary>
    [Fact]
    public void Rows_without_a_prompt_take_the_conversations_shared_start_as_the_prompt()
    {
        var path = _dir.Write("pairs.jsonl", """
            {"chosen": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "GOOD"}], "rejected": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "bad"}]}
            """ + "\n");
        var pair = Assert.Single(DatasetFormatter.Format([Items.Of(path, ("Format", "preference"))], ChatMl, Dpo).PreferenceTrain);
        const string prompt = "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n";
        Assert.Equal(prompt + "GOOD<|im_end|>\n", pair.Chosen.Text);
        Assert.Equal(prompt + "bad<|im_end|>\n", pair.Rejected.Text);
        Assert.Equal("GOOD<|im_end|>", Loss(pair.Chosen));
        Assert.Equal("bad<|im_end|>", Loss(pair.Rejected));
    }

    [Fact]
    public void Csv_and_xlsx_tables_are_read_by_their_column_names()
    {
        var csv = _dir.Write("pairs.csv", "prompt,chosen,rejected\nShout hi,HI,hi\n");
        var xlsx = Path.Combine(_dir.Path, "pairs.xlsx");
        using (var wb = new XLWorkbook())
        {
            var s = wb.AddWorksheet("Pairs");
            s.Cell(1, 1).Value = "prompt"; s.Cell(1, 2).Value = "chosen"; s.Cell(1, 3).Value = "rejected";
            s.Cell(2, 1).Value = "Shout hi"; s.Cell(2, 2).Value = "HI"; s.Cell(2, 3).Value = "hi";
            wb.SaveAs(xlsx);
        }
        var r = DatasetFormatter.Format([Items.Of(csv, ("Format", "preference")), Items.Of(xlsx, ("Format", "preference"))], ChatMl, Dpo);
        Assert.Equal(2, r.PreferenceTrain.Count);
        Assert.Equal(r.PreferenceTrain[0].Chosen.Text, r.PreferenceTrain[1].Chosen.Text);
        Assert.Equal(r.PreferenceTrain[0].Rejected.Text, r.PreferenceTrain[1].Rejected.Text);
        Assert.Equal("HI<|im_end|>", Loss(r.PreferenceTrain[1].Chosen));
    }

    [Fact]
    public void Sft_and_preference_items_in_one_project_give_both_kinds_and_files()
    {
        var sft = _dir.Write("sft.jsonl", "{\"instruction\": \"Q\", \"output\": \"A\"}\n");
        var pref = _dir.Write("pairs.jsonl", "{\"prompt\": \"p\", \"chosen\": \"C\", \"rejected\": \"c\"}\n");
        var r = DatasetFormatter.Format([Items.Of(sft), Items.Of(pref, ("Format", "preference"))], ChatMl, Dpo);
        Assert.Single(r.Train);
        Assert.Single(r.PreferenceTrain);
        var outDir = Path.Combine(_dir.Path, "out");
        DatasetFormatter.Write(r, outDir);
        var read = PreferenceDatasetFiles.ReadFormatted(Path.Combine(outDir, PreferenceDatasetFiles.TrainJsonl)).Single();
        Assert.Equal(r.PreferenceTrain[0].Chosen.Text, read.Pair.Chosen.Text);
        Assert.Equal(r.PreferenceTrain[0].Rejected.AssistantSpans, read.Pair.Rejected.AssistantSpans);
        Assert.Equal(1, read.Line);
    }

    [Theory]
    [InlineData("{\"prompt\": [{\"role\": \"assistant\", \"content\": \"x\"}], \"chosen\": \"C\", \"rejected\": \"c\"}", "FT1070", "'prompt' must end with a user message")]
    [InlineData("{\"prompt\": \"p\", \"chosen\": [{\"role\": \"user\", \"content\": \"x\"}], \"rejected\": \"c\"}", "FT1070", "'chosen' must be one or more assistant messages")]
    [InlineData("{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"c\"}", "FT1070", "'chosen' is a JSON number")]
    [InlineData("{\"prompt\": \"p\", \"chosen\": \"C\"}", "FT1005", "no 'rejected' field")]
    [InlineData("{\"chosen\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"C\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"y\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}", "FT1070", "do not start with the same messages")]
    [InlineData("{\"chosen\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"C\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"x\"}]}", "FT1070", "is the start of the other")]
    public void Bad_rows_are_errors_at_their_line(string row, string code, string message)
    {
        var path = _dir.Write("pairs.jsonl", "{\"prompt\": \"p\", \"chosen\": \"C\", \"rejected\": \"c\"}\n" + row + "\n");
        var e = Assert.Throws<FineTuneException>(() => DatasetFormatter.Format([Items.Of(path, ("Format", "preference"))], ChatMl, Dpo));
        Assert.Equal((code, 2), (e.Code, e.Line));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Every_bad_pair_of_a_file_is_reported_at_its_line_in_one_build()
    {
        var good = "{\"prompt\": \"p\", \"chosen\": \"C\", \"rejected\": \"c\"}";
        var path = _dir.Write("pairs.jsonl", string.Join('\n',
            good,
            "{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"c\"}",
            "{\"prompt\": \"p\", \"chosen\": \"C\"}",
            "{\"prompt\": ",
            good) + "\n");
        var e = Assert.Throws<FineTuneErrors>(() => DatasetFormatter.Format([Items.Of(path, ("Format", "preference"))], ChatMl, Dpo));
        Assert.Equal([("FT1070", 2), ("FT1005", 3), ("FT1003", 4)], e.Errors.Select(x => (x.Code, x.Line)).ToArray());
    }

    [Fact]
    public void Trainer_and_data_must_agree()
    {
        var pref = _dir.Write("pairs.jsonl", "{\"prompt\": \"p\", \"chosen\": \"C\", \"rejected\": \"c\"}\n");
        var sft = _dir.Write("sft.jsonl", "{\"instruction\": \"Q\", \"output\": \"A\"}\n");
        Assert.Equal("FT1071", Assert.Throws<FineTuneException>(() => DatasetFormatter.Format([Items.Of(pref, ("Format", "preference"))], ChatMl, new TrainingConfig())).Code);
        Assert.Equal("FT1071", Assert.Throws<FineTuneException>(() => DatasetFormatter.Format([Items.Of(sft)], ChatMl, Dpo)).Code);
    }
}
