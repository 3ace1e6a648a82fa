namespace FineTune.Build.IntegrationTests;

/// <summary>
/// Bad project input fails fast, before any step runs, with a canonical FTnnnn error that points
/// at the line of the project file to fix and says how.
/// </summary>
public sealed class ProjectValidationTests : IDisposable
{
    private readonly ModelProjectSandbox _sandbox = ModelProjectSandbox.CreateFromExample();

    public ProjectValidationTests()
    {
        // A base model folder with the right files (the real Llama 3 tokenizer, placeholder weights),
        // so only the property under test is wrong and the example's tiny-model generation does not run.
        var baseDir = Path.Combine(_sandbox.ProjectDir, "models", "base");
        Directory.CreateDirectory(baseDir);
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.WriteAllText(Path.Combine(baseDir, f), "{}");
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(RepoPaths.Root, "node_modules", "@lenml", "tokenizer-llama3", "models", f), Path.Combine(baseDir, f));
    }

    [Fact]
    public void Invalid_model_version_names_the_property_line_and_value()
    {
        _sandbox.SetProperty("ModelVersion", "1.0");
        var result = _sandbox.Dotnet("build");
        AssertErrorAtLine(result, "FT6002", "<ModelVersion>");
        Assert.Contains("'1.0'", result.Output);
    }

    [Fact]
    public void Unknown_quantization_lists_the_known_ones()
    {
        _sandbox.SetProperty("GgufQuantizations", "Q8_0;Q3_XXL");
        var result = _sandbox.Dotnet("build");
        AssertErrorAtLine(result, "FT6003", "<GgufQuantizations>");
        Assert.Contains("Q3_XXL", result.Output);
        Assert.Contains("Q4_K_M", result.Output);
    }

    [Fact]
    public void Missing_base_model_folder_is_reported()
    {
        _sandbox.SetProperty("BaseModel", "models/nowhere");
        var result = _sandbox.Dotnet("build");
        AssertErrorAtLine(result, "FT6005", "<BaseModel>");
        Assert.Contains("models/nowhere", result.Output);
    }

    [Fact]
    public void Base_model_without_weights_names_the_missing_files()
    {
        File.Delete(Path.Combine(_sandbox.ProjectDir, "models", "base", "model.safetensors"));
        File.Delete(Path.Combine(_sandbox.ProjectDir, "models", "base", "tokenizer.json"));
        var result = _sandbox.Dotnet("build");
        AssertErrorAtLine(result, "FT6006", "<BaseModel>");
        Assert.Contains("tokenizer.json", result.Output);
        Assert.Contains("safetensors", result.Output);
    }

    [Fact]
    public void Missing_dataset_file_is_reported_at_its_item()
    {
        _sandbox.EditFile("example-project.csproj", t => t.Replace("data/tweets.jsonl", "data/missing.jsonl"));
        var result = _sandbox.Dotnet("build");
        AssertErrorAtLine(result, "FT6007", "data/missing.jsonl");
    }

    [Fact]
    public void Unknown_dataset_format_lists_the_known_formats()
    {
        _sandbox.EditFile("example-project.csproj", t => t.Replace("Format=\"sharegpt\"", "Format=\"shargpt\""));
        var result = _sandbox.Dotnet("build");
        AssertErrorAtLine(result, "FT6008", "Format=\"shargpt\"");
        Assert.Contains("sharegpt", result.Output.Split("FT6008")[1]);
    }

    [Fact]
    public void Malformed_dataset_line_is_reported_at_its_file_and_line()
    {
        _sandbox.EditFile("data/tweets.jsonl", text =>
        {
            var lines = text.Split('\n');
            lines[6] = "{\"conversations\": [{\"from\": \"human\", \"value\": \"unterminated";
            return string.Join('\n', lines);
        });
        var result = _sandbox.Dotnet("build");
        Assert.False(result.Succeeded, result.ToString());
        var error = result.Output.Split('\n').FirstOrDefault(l => l.Contains(": error FT1", StringComparison.Ordinal));
        Assert.True(error is not null, result.ToString());
        Assert.Matches(@"data/tweets\.jsonl\(7(,\d+)?\): error FT1\d{3}: ", error);
        Assert.Empty(_sandbox.Ggufs());
    }

    [Fact]
    public void Chat_template_the_base_tokenizer_lacks_fails_before_training_and_names_the_fitting_ones()
    {
        // ChatML's <|im_start|>/<|im_end|> are not tokens of Llama 3's tokenizer: trained anyway, the
        // model would have to spell its stop marker in plain-text pieces and would not stop reliably.
        _sandbox.EditFile("example-project.csproj", t => t.Replace("<ChatTemplate Include=\"llama-3\" />", "<ChatTemplate Include=\"chatml\" />"));
        var result = _sandbox.Dotnet("build");
        Assert.False(result.Succeeded, result.ToString());
        var error = result.Output.Split('\n').FirstOrDefault(l => l.Contains("error FT1023:", StringComparison.Ordinal));
        Assert.True(error is not null, result.ToString());
        Assert.Contains(Path.Combine("models", "base", "tokenizer.json"), error);
        Assert.Contains("<|im_start|>, <|im_end|>", error);
        Assert.Contains("llama-3", error.Split("Use a template")[1]);
        Assert.DoesNotContain("FineTuneTrain: running", result.Output);
        Assert.Empty(_sandbox.Ggufs());
    }

    [Fact]
    public void Truncated_examples_are_reported_at_their_dataset_file_and_line()
    {
        // A prompt made 30 times longer on line 12 is the one example over max_seq_length.
        _sandbox.EditFile("data/tweets.jsonl", text =>
        {
            var lines = text.Split('\n');
            var value = System.Text.RegularExpressions.Regex.Match(lines[11], "\"value\":\\s*\"([^\"]*)\"").Groups[1].Value;
            lines[11] = lines[11].Replace(value, string.Join(' ', Enumerable.Repeat(value, 30)));
            return string.Join('\n', lines);
        });
        _sandbox.SetLoraValue("max_seq_length", "200");
        var result = _sandbox.Dotnet("build", "-t:FineTuneTokenize");
        Assert.True(result.Succeeded, result.ToString());
        var warnings = result.Output.Split('\n').Where(l => l.Contains("warning FT2007:", StringComparison.Ordinal)).Distinct().ToList();
        var warning = Assert.Single(warnings);
        var dataset = Path.Combine(_sandbox.ProjectDir, "data", "tweets.jsonl");
        Assert.StartsWith($"{dataset}(12,1): warning FT2007: ", warning.Trim());
        Assert.Contains("max_seq_length 200", warning);
    }

    private void AssertErrorAtLine(BuildResult result, string code, string expectedLineContent)
    {
        Assert.False(result.Succeeded, result.ToString());
        var line = result.Output.Split('\n').FirstOrDefault(l => l.Contains($"error {code}:", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {code} error in:\n{result}");
        // Canonical form: path(line,col): error CODE: message
        var match = System.Text.RegularExpressions.Regex.Match(line!, @"^\s*(?<file>.+?)\((?<line>\d+),(?<col>\d+)\): error " + code + ": ");
        Assert.True(match.Success, "not in canonical form: " + line);
        Assert.EndsWith("example-project.csproj", match.Groups["file"].Value);
        var projectLines = File.ReadAllLines(_sandbox.ProjectFile);
        var lineNo = int.Parse(match.Groups["line"].Value);
        Assert.Contains(expectedLineContent, projectLines[lineNo - 1]);
        // Nothing was produced.
        Assert.Empty(_sandbox.Ggufs());
    }

    public void Dispose() => _sandbox.Dispose();
}
