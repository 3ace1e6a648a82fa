using System.Text;
using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Ollama.Tests.Modelfiles;

public class ModelfileWriterTests
{
    private static readonly ModelfileSpec Full = new()
    {
        From = "./tweet-caps-1.0.0.Q8_0.gguf",
        Template = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
        Stops = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        System = "You write \"\"\"tweets\"\"\" in CAPS.\nNever use emoji: 🦙.",
        Parameters =
        [
            KeyValuePair.Create("temperature", "0.7"), KeyValuePair.Create("top_p", "0.9"), KeyValuePair.Create("top_k", "40"),
            KeyValuePair.Create("num_ctx", "4096"), KeyValuePair.Create("repeat_penalty", "1.1"), KeyValuePair.Create("seed", "42"),
            KeyValuePair.Create("num_predict", "128"), KeyValuePair.Create("min_p", "0.05"),
        ],
        License = "MIT License\n\nCopyright (c) 2026 \"Someone\"\n",
    };

    [Fact]
    public void Everything_written_reads_back_unchanged()
    {
        var modelfile = ModelfileParser.Parse(ModelfileWriter.Write(Full));
        Assert.Equal([Full.From], modelfile.Froms);
        Assert.Equal(Full.Template, modelfile.Template);
        Assert.Equal(Full.System, modelfile.System);
        Assert.Equal([Full.License!], modelfile.Licenses);
        Assert.Equal(Full.Stops, modelfile.Parameters.Where(p => p.Key == "stop").Select(p => p.Value));
        Assert.Equal(Full.Parameters, modelfile.Parameters.Where(p => p.Key != "stop"));
    }

    [Fact]
    public void One_stop_line_per_stop_token_and_bare_values_where_possible()
    {
        var text = ModelfileWriter.Write(Full);
        var lines = text.Split('\n');
        Assert.Contains("FROM ./tweet-caps-1.0.0.Q8_0.gguf", lines);
        Assert.Contains("PARAMETER stop <|start_header_id|>", lines);
        Assert.Contains("PARAMETER stop <|end_header_id|>", lines);
        Assert.Contains("PARAMETER stop <|eot_id|>", lines);
        Assert.Contains("PARAMETER temperature 0.7", lines);
        Assert.Equal(3, lines.Count(l => l.StartsWith("PARAMETER stop ", StringComparison.Ordinal)));
    }

    [Fact]
    public void Adapter_mode_writes_the_base_model_name_and_the_adapter_path()
    {
        var text = ModelfileWriter.Write(new ModelfileSpec { From = "llama3.2:1b", Adapter = "./adapter.gguf" });
        Assert.Contains("FROM llama3.2:1b\nADAPTER ./adapter.gguf\n", text);
        var modelfile = ModelfileParser.Parse(text);
        Assert.Equal("./adapter.gguf", modelfile.Adapter);
    }

    [Fact]
    public void Duplicate_stops_are_written_once_and_stop_parameters_join_the_stop_tokens()
    {
        var text = ModelfileWriter.Write(new ModelfileSpec
        {
            From = "x", Stops = ["</s>", "</s>"], Parameters = [KeyValuePair.Create("stop", "User:")],
        });
        Assert.Equal(["</s>", "User:"], ModelfileParser.Parse(text).Parameters.Select(p => p.Value));
    }

    public static TheoryData<string> BuiltInTemplates => new(FineTune.Data.Templates.ChatTemplates.BuiltInNames);

    [Theory]
    [MemberData(nameof(BuiltInTemplates))]
    public void Every_built_in_chat_template_and_its_stops_round_trip(string name)
    {
        var template = FineTune.Data.Templates.ChatTemplates.Resolve(name, Path.GetTempPath());
        var modelfile = ModelfileParser.Parse(ModelfileWriter.Write(new ModelfileSpec { From = "./m.gguf", Template = template.OllamaTemplate, Stops = template.StopTokens }));
        Assert.Equal(template.OllamaTemplate, modelfile.Template);
        Assert.Equal(template.StopTokens.Distinct(), modelfile.Parameters.Select(p => p.Value));
    }

    [Theory]
    [InlineData("temprature", "1", "unknown parameter")]
    [InlineData("temperature", "hot", "a number")]
    [InlineData("top_k", "4.5", "an integer")]
    [InlineData("use_mmap", "yes", "true/false")]
    [InlineData("stop", "", "non-empty")]
    public void Bad_parameters_are_FT5003(string name, string value, string fragment)
    {
        var e = Assert.Throws<FineTuneException>(() => ModelfileWriter.Write(new ModelfileSpec { From = "x", Parameters = [KeyValuePair.Create(name, value)] }));
        Assert.Equal("FT5003", e.Code);
        Assert.Contains(fragment, e.Message);
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("with inner  spaces", "with inner  spaces")]
    [InlineData("ends with quote\"", "ends with quote\"")]
    [InlineData(" leading", "\" leading\"")]
    [InlineData("trailing\t", "\"trailing\t\"")]
    [InlineData("", "\"\"")]
    [InlineData("\"starts with a quote", "\"\"starts with a quote\"")]
    [InlineData("two\nlines", "\"\"\"two\nlines\"\"\"")]
    [InlineData("line ends with \"quote\"\nnext", "\"\"\"line ends with \"quote\"\nnext\"\"\"")]
    [InlineData("\"\"double start", "\"\"\"\"\"double start\"\"\"")]
    [InlineData("Say \"\"\"hi\"\"\" now", "Say \"\"\"hi\"\"\" now")]
    [InlineData("\"", "\"\"\"\"\"\"\"")]
    public void Quoting_picks_the_simplest_form_that_reads_back(string value, string expected)
    {
        Assert.Equal(expected, ModelfileText.Quote(value, "SYSTEM"));
        Assert.Equal(value, ModelfileParser.Parse("FROM x\nSYSTEM " + expected + "\n").System);
    }

    [Fact]
    public void A_text_no_Modelfile_can_carry_is_FT5002_not_a_silently_different_file()
    {
        // Line 1 ends with """ so a triple-quoted value would close there; it also ends with " so a single-quoted one would too.
        var e = Assert.Throws<FineTuneException>(() => ModelfileText.Quote("Use \"\"\"\nfor docstrings", "SYSTEM"));
        Assert.Equal("FT5002", e.Code);
        Assert.Contains("line 1", e.Message);
        var drop = Assert.Throws<FineTuneException>(() => ModelfileText.Quote("zero\u200Bwidth", "SYSTEM"));
        Assert.Equal("FT5002", drop.Code);
        Assert.Contains("U+200B", drop.Message);
        Assert.Equal("FT5002", Assert.Throws<FineTuneException>(() => ModelfileText.Quote("lone \uD800 surrogate", "SYSTEM")).Code);
    }

    /// <summary>
    /// Random texts over the characters that matter to the grammar: each one either reads back exactly,
    /// or is refused, and refused exactly when the independent rule says no form can carry it.
    /// </summary>
    [Fact]
    public void Random_texts_round_trip_or_are_refused_for_the_documented_reason()
    {
        string[] alphabet = ["\"", "\"", "\"\"\"", " ", "\t", "\n", "\r", "\r\n", "a", "Z", "#", "FROM ", "SYSTEM ", "é", "🦙", "世", "\u0301", "\u200D", "{{ .Prompt }}"];
        var random = new Random(1234);
        int written = 0, refused = 0;
        for (var n = 0; n < 20000; n++)
        {
            var sb = new StringBuilder();
            var length = random.Next(0, 9);
            for (var i = 0; i < length; i++) sb.Append(alphabet[random.Next(alphabet.Length)]);
            var value = sb.ToString();
            var shouldRefuse = value.Contains('\u200D') || HasLineEndingInTripleQuote(value);
            string text;
            try { text = ModelfileWriter.Write(new ModelfileSpec { From = "x", System = value, Stops = value.Length > 0 ? [value] : [] }); }
            catch (FineTuneException e) when (e.Code == "FT5002")
            {
                Assert.True(shouldRefuse, $"refused a representable text: {Escape(value)}");
                refused++;
                continue;
            }
            Assert.False(shouldRefuse, $"wrote an unrepresentable text: {Escape(value)}");
            var modelfile = ModelfileParser.Parse(text);
            Assert.Equal(value, modelfile.System);
            if (value.Length > 0) Assert.Equal(value, Assert.Single(modelfile.Parameters).Value);
            written++;
        }
        Assert.True(written > 10000 && refused > 100, $"written {written}, refused {refused}");
    }

    // Some line break is preceded (ignoring blanks and line breaks) by """: both quoted forms would close there.
    private static bool HasLineEndingInTripleQuote(string value)
    {
        for (var i = 0; i < value.Length; i++)
            if (value[i] is '\r' or '\n' && value[..i].TrimEnd(' ', '\t', '\r', '\n').EndsWith("\"\"\"", StringComparison.Ordinal))
                return true;
        return false;
    }

    private static string Escape(string s) => s.Replace("\r", "\\r").Replace("\n", "\\n").Replace("\t", "\\t");

    [Theory]
    [InlineData("model.gguf", "./model.gguf")]
    [InlineData("./model.gguf", "./model.gguf")]
    [InlineData("sub/model.gguf", "./sub/model.gguf")]
    [InlineData("../bin/model.gguf", "../bin/model.gguf")]
    public void Relative_paths_are_relative_to_the_Modelfile(string path, string expected) =>
        Assert.Equal(expected, ModelfileWriter.Reference(path, "/tmp/out"));

    [Fact]
    public void Absolute_paths_become_relative_to_the_Modelfile()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ft-ref", "bin");
        Assert.Equal("./m.gguf", ModelfileWriter.Reference(Path.Combine(dir, "m.gguf"), dir));
        Assert.Equal("../cache/a.gguf", ModelfileWriter.Reference(Path.Combine(Path.GetDirectoryName(dir)!, "cache", "a.gguf"), dir));
    }

    [Fact]
    public void WriteFile_is_atomic_and_utf8_without_bom()
    {
        var path = Path.Combine(Path.GetTempPath(), "ft-modelfile-" + Guid.NewGuid().ToString("N"), "Modelfile");
        ModelfileWriter.WriteFile(path, Full);
        var bytes = File.ReadAllBytes(path);
        Assert.NotEqual(0xEF, bytes[0]);
        Assert.Equal(Full.System, ModelfileParser.ParseFile(path).System);
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }
}
