using ClosedXML.Excel;
using FineTune.Core.Config;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Formatting;

/// <summary>Each dataset format, read and rendered with ChatML (whose text is easy to write by hand).</summary>
public class FormatsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly ChatTemplate ChatMl = ChatTemplates.Resolve("chatml", "/");
    public void Dispose() => _dir.Dispose();

    private static string Turn(string role, string content) => $"<|im_start|>{role}\n{content}<|im_end|>\n";

    private static IReadOnlyList<string> Texts(params DatasetItem[] items) =>
        DatasetFormatter.Format(items, ChatMl, new TrainingConfig()).Train.Select(e => e.Text).ToList();

    [Fact]
    public void Alpaca_with_optional_input_and_system()
    {
        var path = _dir.Write("a.jsonl",
            """
            {"instruction": "Translate", "input": "Bonjour", "output": "Hello"}
            {"instruction": "Say hi", "output": "Hi", "system": "Be nice."}
            {"instruction": "Count", "input": "", "output": "1 2 3"}
            """);
        Assert.Equal(
        [
            Turn("user", "Translate\n\nBonjour") + Turn("assistant", "Hello"),
            Turn("system", "Be nice.") + Turn("user", "Say hi") + Turn("assistant", "Hi"),
            Turn("user", "Count") + Turn("assistant", "1 2 3"),
        ], Texts(Items.Of(path, ("Format", "alpaca"))));
    }

    [Fact]
    public void Alpaca_from_a_csv_table()
    {
        var path = _dir.Write("a.csv", "instruction,input,output\nSay hi,,Hi\n");
        Assert.Equal([Turn("user", "Say hi") + Turn("assistant", "Hi")], Texts(Items.Of(path, ("Format", "alpaca"))));
    }

    [Fact]
    public void ShareGpt_roles_map_to_the_conversation_model()
    {
        var path = _dir.Write("s.json",
            """
            [{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"},
                                {"from": "user", "value": "Q2"}, {"from": "assistant", "value": "A2"}]}]
            """);
        Assert.Equal([Turn("system", "S") + Turn("user", "Q1") + Turn("assistant", "A1") + Turn("user", "Q2") + Turn("assistant", "A2")],
            Texts(Items.Of(path, ("Format", "sharegpt"))));
    }

    [Fact]
    public void Messages_format_and_system_metadata_for_rows_without_one()
    {
        var path = _dir.Write("m.jsonl",
            """
            {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
            {"messages": [{"role": "system", "content": "Own"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]}
            """);
        Assert.Equal(
        [
            Turn("system", "Default") + Turn("user", "Q") + Turn("assistant", "A"),
            Turn("system", "Own") + Turn("user", "Q") + Turn("assistant", "B"),
        ], Texts(Items.Of(path, ("Format", "messages"), ("System", "Default"))));
    }

    [Fact]
    public void Text_format_trains_on_every_character()
    {
        var path = _dir.Write("t.jsonl", "{\"text\": \"Chapter one.\"}\n");
        var result = DatasetFormatter.Format([Items.Of(path, ("Format", "text"))], ChatMl, new TrainingConfig());
        var e = Assert.Single(result.Train);
        Assert.Equal("Chapter one.<|endoftext|>", e.Text);
        Assert.Equal([new Core.Datasets.TextSpan(0, e.Text.Length)], e.AssistantSpans);
    }

    [Fact]
    public void Format_is_inferred_from_the_fields_when_not_set()
    {
        var path = _dir.Write("x.jsonl", "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, {\"from\": \"gpt\", \"value\": \"A\"}]}\n");
        Assert.Equal([Turn("user", "Q") + Turn("assistant", "A")], Texts(Items.Of(path)));
    }

    [Fact]
    public void Titanic_columns_drop_optional_parts_with_missing_values()
    {
        // Rows as in the Titanic CSV: Age and Embarked are empty for some passengers.
        var path = _dir.Write("titanic.csv",
            "PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n" +
            "1,0,3,\"Braund, Mr. Owen Harris\",male,22,1,0,A/5 21171,7.25,,S\n" +
            "6,0,3,\"Moran, Mr. James\",male,,0,0,330877,8.4583,,Q\n" +
            "62,1,1,\"Icard, Miss. Amelie\",female,38,0,0,113572,80,B28,\n" +
            "830,1,1,\"Stone, Mrs. George Nelson (Martha Evelyn)\",female,,0,0,113572,80,B28,\n");
        var texts = Texts(Items.Of(path, ("Format", "columns"),
            ("Prompt", "[[The passenger embarked from {Embarked}.]] [[Their age is {Age}.]] [[They paid {Fare} in class {Pclass}.]]"),
            ("Response", "{Survived}")));
        Assert.Equal(
        [
            Turn("user", "The passenger embarked from S. Their age is 22. They paid 7.25 in class 3.") + Turn("assistant", "0"),
            Turn("user", "The passenger embarked from Q.  They paid 8.4583 in class 3.") + Turn("assistant", "0"),
            Turn("user", "Their age is 38. They paid 80 in class 1.") + Turn("assistant", "1"),
            Turn("user", "They paid 80 in class 1.") + Turn("assistant", "1"),
        ], texts);
    }

    [Fact]
    public void Unknown_column_names_it_and_lists_the_columns()
    {
        var path = _dir.Write("t.csv", "Name,Age\nA,3\n");
        var ex = Assert.Throws<FineTuneException>(() => Texts(Items.Of(path, ("Format", "columns"), ("Prompt", "[[Age {Agee}]]"), ("Response", "{Name}"))));
        Assert.Equal("FT1008", ex.Code);
        Assert.Contains("'Agee'", ex.Message);
        Assert.Contains("Name, Age", ex.Message);
    }

    [Theory]
    [InlineData("[[unclosed {Age}")]
    [InlineData("[[nested [[{Age}]]]]")]
    [InlineData("{Age")]
    public void Malformed_column_templates_are_errors(string prompt)
    {
        var path = _dir.Write("t.csv", "Name,Age\nA,3\n");
        Assert.Equal("FT1018", Assert.Throws<FineTuneException>(() => Texts(Items.Of(path, ("Format", "columns"), ("Prompt", prompt), ("Response", "{Name}")))).Code);
    }

    [Fact]
    public void Columns_from_one_sheet_of_a_workbook()
    {
        var path = Path.Combine(_dir.Path, "book.xlsx");
        using (var wb = new XLWorkbook())
        {
            var a = wb.AddWorksheet("Reviews");
            a.Cell(1, 1).Value = "Review"; a.Cell(1, 2).Value = "Label";
            a.Cell(2, 1).Value = "Great!"; a.Cell(2, 2).Value = "positive";
            var b = wb.AddWorksheet("Other");
            b.Cell(1, 1).Value = "x";
            b.Cell(2, 1).Value = "y";
            wb.SaveAs(path);
        }
        Assert.Equal([Turn("user", "Review: Great!") + Turn("assistant", "positive")],
            Texts(Items.Of(path, ("Format", "columns"), ("Sheet", "Reviews"), ("Prompt", "Review: {Review}"), ("Response", "{Label}"))));
    }

    [Theory]
    [InlineData("{\"instruction\": \"Q\"}", "FT1005", "'output'")]
    [InlineData("{\"instruction\": \"Q\", \"output\": 5}", "FT1006", "'output'")]
    [InlineData("{\"conversations\": \"oops\"}", "FT1006", "'conversations'")]
    [InlineData("{\"conversations\": [{\"from\": \"bot\", \"value\": \"x\"}]}", "FT1010", "'bot'")]
    [InlineData("{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}]}", "FT1011", "no assistant reply")]
    [InlineData("{\"conversations\": [{\"from\": \"gpt\", \"value\": \"A\"}, {\"from\": \"human\", \"value\": \"Q\"}]}", "FT1011", "starts with an assistant")]
    [InlineData("{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", "FT1010", "'tool'")]
    [InlineData("{\"messages\": [{\"role\": \"user\"}]}", "FT1005", "'content'")]
    public void Bad_rows_are_errors_at_their_line(string badRow, string code, string mention)
    {
        var good = "{\"instruction\": \"Q\", \"output\": \"A\"}";
        var format = badRow.Contains("conversations") ? "sharegpt" : badRow.Contains("messages") ? "messages" : "alpaca";
        if (format != "alpaca") good = format == "sharegpt"
            ? "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, {\"from\": \"gpt\", \"value\": \"A\"}]}"
            : "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}";
        var path = _dir.Write("d.jsonl", $"{good}\n{good}\n{badRow}\n{good}\n");
        var ex = Assert.Throws<FineTuneException>(() => Texts(Items.Of(path, ("Format", format))));
        Assert.Equal((code, path, 3), (ex.Code, ex.File, ex.Line));
        Assert.Contains(mention, ex.Message);
    }

    private const string GoodShareGpt = "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, {\"from\": \"gpt\", \"value\": \"A\"}]}";

    /// <summary>A file with several bad rows: one build lists each at its line, as a compiler does.</summary>
    [Fact]
    public void Every_bad_row_of_a_file_is_reported_at_its_line_in_one_build()
    {
        var path = _dir.Write("d.jsonl", string.Join('\n',
            GoodShareGpt,
            "{\"conversations\": [{\"from\": \"bot\", \"value\": \"x\"}]}",
            GoodShareGpt,
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}]}",
            "{\"conversations\": [{\"from\": \"human\"}]}",
            GoodShareGpt) + "\n");
        var ex = Assert.Throws<FineTuneErrors>(() => Texts(Items.Of(path, ("Format", "sharegpt"))));
        Assert.Equal([("FT1010", 2), ("FT1011", 4), ("FT1005", 5)], ex.Errors.Select(e => (e.Code, e.Line)).ToArray());
        Assert.All(ex.Errors, e => Assert.Equal(path, e.File));
        Assert.Equal(3, ex.ToCanonicalString().Split(Environment.NewLine).Length);
    }

    [Fact]
    public void A_jsonl_line_that_is_not_json_is_one_bad_row_and_reading_goes_on()
    {
        var path = _dir.Write("d.jsonl", string.Join('\n',
            "{\"conversations\": [{\"from\": \"bot\", \"value\": \"x\"}]}",
            "{\"conversations\": [",
            "[1, 2]",
            GoodShareGpt,
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}]}") + "\n");
        var ex = Assert.Throws<FineTuneErrors>(() => Texts(Items.Of(path, ("Format", "sharegpt"))));
        Assert.Equal([("FT1010", 1), ("FT1003", 2), ("FT1006", 3), ("FT1011", 5)], ex.Errors.Select(e => (e.Code, e.Line)).ToArray());
    }

    [Fact]
    public void A_jsonl_file_of_nothing_but_broken_lines_lists_them_and_is_not_called_empty()
    {
        var path = _dir.Write("d.jsonl", "{oops\n{\"a\": \n");
        var ex = Assert.Throws<FineTuneErrors>(() => Texts(Items.Of(path, ("Format", "sharegpt"))));
        Assert.Equal([("FT1003", 1), ("FT1003", 2)], ex.Errors.Select(e => (e.Code, e.Line)).ToArray());
    }

    [Fact]
    public void A_format_that_cannot_be_told_ends_the_file_with_the_rows_found_bad_before_it()
    {
        var path = _dir.Write("d.jsonl", "{oops\n{\"a\": 1}\n{oops\n");
        var ex = Assert.Throws<FineTuneErrors>(() => Texts(Items.Of(path)));
        Assert.Equal([("FT1003", 1), ("FT1007", 2)], ex.Errors.Select(e => (e.Code, e.Line)).ToArray());
    }

    [Fact]
    public void A_file_of_bad_rows_reports_the_first_twenty()
    {
        var bad = "{\"instruction\": \"Q\"}";
        var path = _dir.Write("d.jsonl", string.Join('\n', Enumerable.Repeat(bad, 30)) + "\n");
        var ex = Assert.Throws<FineTuneErrors>(() => Texts(Items.Of(path, ("Format", "alpaca"))));
        Assert.Equal(Enumerable.Range(1, DatasetFormatter.MaxRowErrors), ex.Errors.Select(e => e.Line));
        Assert.Equal(20, DatasetFormatter.MaxRowErrors);
    }

    [Fact]
    public void A_column_the_table_lacks_is_one_error_not_one_per_row()
    {
        var path = _dir.Write("t.csv", "Name,Age\nA,3\nB,4\nC,5\n");
        var ex = Assert.Throws<FineTuneException>(() => Texts(Items.Of(path, ("Format", "columns"), ("Prompt", "{Agee}"), ("Response", "{Name}"))));
        Assert.Equal("FT1008", ex.Code);
        Assert.IsNotType<FineTuneErrors>(ex);
    }

    [Fact]
    public void Unknown_format_lists_the_formats()
    {
        var path = _dir.Write("d.jsonl", "{\"a\": 1}\n");
        var ex = Assert.Throws<FineTuneException>(() => Texts(Items.Of(path, ("Format", "chatml"))));
        Assert.Equal("FT1007", ex.Code);
        Assert.Contains("alpaca, sharegpt, messages, text, columns", ex.Message);
        Assert.Equal("FT1007", Assert.Throws<FineTuneException>(() => Texts(Items.Of(path))).Code);
    }
}
