using ClosedXML.Excel;
using FineTune.Core.Diagnostics;
using FineTune.Data.Readers;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Readers;

public class DatasetReaderTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Jsonl_rows_know_their_line_with_or_without_bom(bool bom)
    {
        var path = _dir.Write("a.jsonl", "{\"text\":\"one\"}\n\n{\"text\":\"two\"}\r\n", bom);
        var rows = DatasetReader.Read(path).ToList();
        Assert.Equal([1, 3], rows.Select(r => r.Line));
        Assert.Equal("one", rows[0].Json!.Value.GetProperty("text").GetString());
    }

    [Fact]
    public void Malformed_jsonl_line_is_reported_with_file_line_and_column()
    {
        var path = _dir.Write("bad.jsonl", "{\"text\":\"ok\"}\n{\"text\":\"ok\"}\n{\"text\": oops}\n");
        var ex = Assert.Throws<FineTuneException>(() => DatasetReader.Read(path).ToList());
        Assert.Equal(("FT1003", path, 3, 10), (ex.Code, ex.File, ex.Line, ex.Column));
        Assert.StartsWith($"{path}(3,10): error FT1003: Line 3 is not valid JSON", ex.ToCanonicalString());
    }

    [Fact]
    public void Jsonl_line_that_is_not_an_object_is_a_type_error()
    {
        var path = _dir.Write("arr.jsonl", "[1,2]\n");
        var ex = Assert.Throws<FineTuneException>(() => DatasetReader.Read(path).ToList());
        Assert.Equal(("FT1006", 1), (ex.Code, ex.Line));
    }

    [Theory]
    [InlineData("empty.jsonl", "")]
    [InlineData("blank.jsonl", "\n\n")]
    [InlineData("empty.csv", "")]
    [InlineData("header-only.csv", "a,b\n")]
    [InlineData("empty.json", "[]")]
    public void Empty_file_is_an_error(string name, string text)
    {
        var path = _dir.Write(name, text);
        var ex = Assert.Throws<FineTuneException>(() => DatasetReader.Read(path).ToList());
        Assert.Equal(("FT1002", path), (ex.Code, ex.File));
    }

    [Fact]
    public void Json_array_elements_know_their_start_line()
    {
        var path = _dir.Write("a.json", "[\n  {\"text\": \"one\"},\n  {\n    \"text\": \"two\"\n  }\n]\n", bom: true);
        Assert.Equal([2, 3], DatasetReader.Read(path).Select(r => r.Line));
    }

    [Fact]
    public void Malformed_json_array_reports_the_line()
    {
        var path = _dir.Write("bad.json", "[\n  {\"text\": \"one\"},\n  {\"text\": \"two\",}\n  {\"text\": }\n]");
        var ex = Assert.Throws<FineTuneException>(() => DatasetReader.Read(path).ToList());
        Assert.Equal(("FT1004", 4), (ex.Code, ex.Line));
    }

    [Fact]
    public void Json_document_that_is_not_an_array_is_an_error()
    {
        var path = _dir.Write("obj.json", "{\"text\": \"one\"}");
        Assert.Equal("FT1004", Assert.Throws<FineTuneException>(() => DatasetReader.Read(path).ToList()).Code);
    }

    [Fact]
    public void Csv_with_quotes_multiline_fields_and_missing_values()
    {
        var path = _dir.Write("t.csv", "Name,Age,Note\n\"Braund, Mr. Owen\",22,\n\"Heikkinen\",,\"two\nlines\"\nAllen,35,\"said \"\"hi\"\"\"\n", bom: true);
        var rows = DatasetReader.Read(path).ToList();
        Assert.Equal([2, 3, 5], rows.Select(r => r.Line));
        Assert.Equal("Braund, Mr. Owen", rows[0].Cells!["Name"]);
        Assert.Equal("", rows[1].Cells!["Age"]);
        Assert.Equal("two\nlines", rows[1].Cells!["Note"]);
        Assert.Equal("said \"hi\"", rows[2].Cells!["Note"]);
    }

    [Fact]
    public void Tsv_is_tab_separated()
    {
        var path = _dir.Write("t.tsv", "instruction\toutput\nSay hi, please\tHi\n");
        var row = Assert.Single(DatasetReader.Read(path));
        Assert.Equal("Say hi, please", row.Cells!["instruction"]);
    }

    [Fact]
    public void Csv_row_with_wrong_field_count_is_an_error_at_its_line()
    {
        var path = _dir.Write("t.csv", "a,b\n1,2\n3,4,5\n");
        var ex = Assert.Throws<FineTuneException>(() => DatasetReader.Read(path).ToList());
        Assert.Equal(("FT1014", 3), (ex.Code, ex.Line));
    }

    [Fact]
    public void Workbook_reads_every_sheet_or_the_named_one()
    {
        var path = Path.Combine(_dir.Path, "book.xlsx");
        using (var wb = new XLWorkbook())
        {
            var train = wb.AddWorksheet("Train");
            train.Cell(1, 1).Value = "instruction"; train.Cell(1, 2).Value = "output";
            train.Cell(2, 1).Value = "Add 2 and 3"; train.Cell(2, 2).Value = 5;
            train.Cell(3, 1).Value = "Say hi"; train.Cell(3, 2).Value = "Hi";
            var more = wb.AddWorksheet("More");
            more.Cell(1, 1).Value = "instruction"; more.Cell(1, 2).Value = "output";
            more.Cell(2, 1).Value = "Say bye"; more.Cell(2, 2).Value = "Bye";
            wb.SaveAs(path);
        }
        var all = DatasetReader.Read(path).ToList();
        Assert.Equal(["Train:2", "Train:3", "More:2"], all.Select(r => $"{r.Sheet}:{r.Line}"));
        Assert.Equal("5", all[0].Cells!["output"]);

        var more2 = Assert.Single(DatasetReader.Read(path, "More"));
        Assert.Equal("Say bye", more2.Cells!["instruction"]);

        var ex = Assert.Throws<FineTuneException>(() => DatasetReader.Read(path, "Test").ToList());
        Assert.Equal("FT1012", ex.Code);
        Assert.Contains("Train, More", ex.Message);
    }

    [Fact]
    public void Missing_file_and_unknown_extension_are_errors()
    {
        Assert.Equal("FT1001", Assert.Throws<FineTuneException>(() => DatasetReader.Read(Path.Combine(_dir.Path, "nope.jsonl")).ToList()).Code);
        var txt = _dir.Write("data.txt", "hello");
        Assert.Equal("FT1013", Assert.Throws<FineTuneException>(() => DatasetReader.Read(txt).ToList()).Code);
    }
}
