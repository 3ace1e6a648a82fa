using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Ollama.Tests.Modelfiles;

/// <summary>
/// Expected values are worked out by hand from Ollama's grammar (parser/parser.go): a value ends at the
/// first line break after which the trimmed value is complete; no escapes; non-printables dropped.
/// </summary>
public class ModelfileParserTests
{
    private static (string Command, string? Key, string Value)[] Parse(string text) =>
        ModelfileParser.Parse(text).Instructions.Select(i => (i.Command, i.Key, i.Value)).ToArray();

    [Fact]
    public void Reads_every_command()
    {
        var text = """
            # a comment
            FROM ./model.gguf
            ADAPTER ./adapter.gguf
            DRAFT ./draft.gguf
            TEMPLATE "{{ .Prompt }}"
            SYSTEM You are helpful.
            PARAMETER temperature 0.7
            PARAMETER stop <|eot_id|>
            PARAMETER num_ctx 4096
            LICENSE MIT
            MESSAGE user Hi there
            MESSAGE assistant Hello!
            RENDERER qwen3
            PARSER qwen3
            REQUIRES 0.14.0
            """;
        Assert.Equal(new (string, string?, string)[]
        {
            ("FROM", null, "./model.gguf"),
            ("ADAPTER", null, "./adapter.gguf"),
            ("DRAFT", null, "./draft.gguf"),
            ("TEMPLATE", null, "{{ .Prompt }}"),
            ("SYSTEM", null, "You are helpful."),
            ("PARAMETER", "temperature", "0.7"),
            ("PARAMETER", "stop", "<|eot_id|>"),
            ("PARAMETER", "num_ctx", "4096"),
            ("LICENSE", null, "MIT"),
            ("MESSAGE", "user", "Hi there"),
            ("MESSAGE", "assistant", "Hello!"),
            ("RENDERER", null, "qwen3"),
            ("PARSER", null, "qwen3"),
            ("REQUIRES", null, "0.14.0"),
        }, Parse(text));
    }

    [Fact]
    public void Commands_are_case_insensitive_and_separated_by_blanks()
    {
        Assert.Equal(new (string, string?, string)[] { ("FROM", null, "llama3.2"), ("SYSTEM", null, "a  b"), ("PARAMETER", "top_k", "40") },
            Parse("from llama3.2\nSystem\t  a  b  \t\nparameter\ttop_k\t40"));
    }

    [Fact]
    public void Blank_lines_indentation_and_comments_are_skipped()
    {
        Assert.Equal(new (string, string?, string)[] { ("FROM", null, "x"), ("SYSTEM", null, "# not a comment") },
            Parse("\n\n   # comment\n\t# another\n  FROM x\n\nSYSTEM # not a comment\n# end"));
    }

    [Fact]
    public void Quoted_values_keep_inner_whitespace_and_line_breaks()
    {
        Assert.Equal(" padded ", Parse("FROM x\nSYSTEM \" padded \"")[1].Value);
        Assert.Equal("line 1\n  line 2\n", Parse("FROM x\nSYSTEM \"\"\"line 1\n  line 2\n\"\"\"")[1].Value);
        Assert.Equal("one\ntwo", Parse("FROM x\nSYSTEM \"one\ntwo\"")[1].Value);
    }

    [Fact]
    public void Quotes_inside_values_only_close_at_a_line_end()
    {
        // The closing check runs at line breaks only, so quotes mid-line are content.
        Assert.Equal("say \"hi\" now", Parse("FROM x\nSYSTEM \"say \"hi\" now\"")[1].Value);
        Assert.Equal("a \"\"\" b", Parse("FROM x\nSYSTEM \"\"\"a \"\"\" b\"\"\"")[1].Value);
        Assert.Equal("ends with a quote\"", Parse("FROM x\nSYSTEM \"\"\"ends with a quote\"\"\"\"")[1].Value);
        Assert.Equal("\"", Parse("FROM x\nPARAMETER stop \"\"\"\"\"\"\"")[1].Value);
        Assert.Equal("bare \"quotes\" inside", Parse("FROM x\nSYSTEM bare \"quotes\" inside")[1].Value);
    }

    [Fact]
    public void A_line_ending_in_the_closing_quote_closes_the_value_early()
    {
        // Ollama closes at "a" + """ and then reads b""" as a command, which is an error.
        var e = Assert.Throws<FineTuneException>(() => ModelfileParser.Parse("FROM x\nSYSTEM \"\"\"a\"\"\"\nb\"\"\""));
        Assert.Equal("FT5001", e.Code);
        Assert.Equal(3, e.Line);
        // Trailing blanks after the quotes do not prevent the early close (the value is trimmed first).
        Assert.Equal("x", Parse("FROM x\nSYSTEM \"x\"   \nFROM y")[1].Value);
    }

    [Fact]
    public void Empty_values()
    {
        Assert.Equal("", Parse("FROM x\nSYSTEM \"\"")[1].Value);
        Assert.Equal("", Parse("FROM x\nSYSTEM \"\"\"\"\"\"")[1].Value);
        Assert.Equal("", Parse("FROM x\nSYSTEM \n")[1].Value);
    }

    [Fact]
    public void Crlf_lone_cr_and_byte_order_mark()
    {
        Assert.Equal(new (string, string?, string)[] { ("FROM", null, "x"), ("SYSTEM", null, "a\r\nb") },
            Parse("\uFEFFFROM x\r\nSYSTEM \"\"\"a\r\nb\"\"\"\r\n"));
        Assert.Equal(new (string, string?, string)[] { ("FROM", null, "x"), ("SYSTEM", null, "y") }, Parse("FROM x\rSYSTEM y\r"));
    }

    [Fact]
    public void Files_in_UTF16_with_a_byte_order_mark_are_read()
    {
        var path = Path.Combine(Path.GetTempPath(), "ft-utf16-" + Guid.NewGuid().ToString("N"));
        File.WriteAllText(path, "FROM x\nSYSTEM 世界\n", new System.Text.UnicodeEncoding(bigEndian: false, byteOrderMark: true));
        try { Assert.Equal("世界", ModelfileParser.ParseFile(path).System); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Non_printable_characters_are_dropped_like_Ollama_does()
    {
        // U+200D (zero-width joiner, Cf), U+00A0 (no-break space, Zs) and U+0001 (Cc) are not strconv.IsPrint.
        Assert.Equal("ab c d", Parse("FROM x\nSYSTEM a\u200Db c\u00A0 d\u0001")[1].Value);
    }

    [Fact]
    public void Unicode_is_kept()
    {
        const string text = "héllo 世界 🦙 עברית e\u0301";
        Assert.Equal(text, Parse($"FROM x\nSYSTEM {text}")[1].Value);
    }

    [Theory]
    [InlineData("FROM x\nFOO bar", 2, "unknown command")]
    [InlineData("FROM x\nSYSTEM", 2, "needs a value")]
    [InlineData("FROM x\nSYSTEM\nfoo", 2, "needs a value")]
    [InlineData("FROM x\nFR0M y", 2, "unexpected character")]
    [InlineData("FROM x\nMESSAGE robot hi", 2, "role")]
    [InlineData("FROM x\nMESSAGE User hi", 2, "role")]
    [InlineData("FROM x\nPARAMETER temp-erature 1", 2, "parameter name")]
    [InlineData("FROM x\nPARAMETER stop\n", 2, "needs a value")]
    [InlineData("FROM x\nSYSTEM \"\"\"never closed\nstill open", 2, "never closed")]
    [InlineData("FROM x\nSYSTEM \"never closed", 2, "never closed")]
    public void Syntax_errors_are_FT5001_with_the_line(string text, int line, string fragment)
    {
        var e = Assert.Throws<FineTuneException>(() => ModelfileParser.Parse(text, "Modelfile"));
        Assert.Equal("FT5001", e.Code);
        Assert.Equal(line, e.Line);
        Assert.Equal("Modelfile", e.File);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void A_Modelfile_without_FROM_is_FT5012()
    {
        var e = Assert.Throws<FineTuneException>(() => ModelfileParser.Parse("SYSTEM hi\n"));
        Assert.Equal("FT5012", e.Code);
    }

    [Fact]
    public void Derived_values_follow_Ollama_last_one_wins_and_accumulating_rules()
    {
        var modelfile = ModelfileParser.Parse("FROM a\nSYSTEM one\nSYSTEM two\nLICENSE l1\nLICENSE l2\nPARAMETER stop s1\nPARAMETER stop s2\nADAPTER ./x.gguf");
        Assert.Equal("two", modelfile.System);
        Assert.Equal(["l1", "l2"], modelfile.Licenses);
        Assert.Equal(["s1", "s2"], modelfile.Parameters.Select(p => p.Value));
        Assert.Equal("./x.gguf", modelfile.Adapter);
        Assert.Null(modelfile.Template);
    }

    [Fact]
    public void The_example_from_Ollamas_documentation_parses()
    {
        // docs/modelfile.mdx, "Basic Modelfile" and the template example.
        var modelfile = ModelfileParser.Parse(""""
            FROM llama3.2
            # sets the temperature to 1 [higher is more creative, lower is more coherent]
            PARAMETER temperature 1
            # sets the context window size to 4096, this controls how many tokens the LLM can use as context to generate the next token
            PARAMETER num_ctx 4096

            # sets a custom system message to specify the behavior of the chat assistant
            SYSTEM You are Mario from super mario bros, acting as an assistant.
            TEMPLATE """{{ if .System }}<|im_start|>system
            {{ .System }}<|im_end|>
            {{ end }}{{ if .Prompt }}<|im_start|>user
            {{ .Prompt }}<|im_end|>
            {{ end }}<|im_start|>assistant
            """
            """");
        Assert.Equal(["llama3.2"], modelfile.Froms);
        Assert.Equal("You are Mario from super mario bros, acting as an assistant.", modelfile.System);
        Assert.Equal("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n", modelfile.Template);
        Assert.Equal([KeyValuePair.Create("temperature", "1"), KeyValuePair.Create("num_ctx", "4096")], modelfile.Parameters);
    }
}
