using System.Text.Json;
using System.Xml.Linq;
using FineTune.Hub.TestServer;

namespace FineTune.Build.IntegrationTests.Docs;

/// <summary>
/// The project file the README tells users to write, built as written: the XML is taken from
/// README.md itself, so a snippet MSBuild rejects (as `Output="..."` did: MSB4066) fails here.
/// </summary>
[Collection("pipeline")]
public sealed class ReadmeProjectSnippetTests
{
    // Rows of the Kaggle Titanic training set (train.csv, PassengerId 1, 6, 62): passenger 6 has no
    // Age and passenger 62 no port of embarkation, the empty cells the columns format must drop.
    private const string TitanicCsv = """
        PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked
        1,0,3,"Braund, Mr. Owen Harris",male,22,1,0,A/5 21171,7.25,,S
        6,0,3,"Moran, Mr. James",male,,0,0,330877,8.4583,,Q
        62,1,1,"Icard, Miss. Amelie",female,38,0,0,113572,80,B28,

        """;

    [Fact]
    public async Task Readme_project_snippet_builds_a_csv_with_empty_cells_through_the_columns_format()
    {
        var snippet = DocSnippets.Single("README.md", "Use it in your own repository", "xml");
        var project = XDocument.Parse(snippet.Text);
        string Property(string name) => project.Descendants(name).Single().Value.Trim();
        using var sandbox = ModelProjectSandbox.CreateFromProjectText(Property("ModelName"), snippet.Text);

        // The files the snippet names, made the way a user would have them.
        var datasets = project.Descendants("FineTuneDataset").ToList();
        var csvItem = datasets.Single(d => (string?)d.Attribute("Format") == "columns");
        var csvPath = Path.Combine(sandbox.ProjectDir, (string)csvItem.Attribute("Include")!);
        Directory.CreateDirectory(Path.GetDirectoryName(csvPath)!);
        File.WriteAllText(csvPath, TitanicCsv.Replace("\r\n", "\n"));
        foreach (var item in datasets.Where(d => d != csvItem))
        {
            var include = (string)item.Attribute("Include")!;
            Assert.Equal("sharegpt", (string?)item.Attribute("Format"));
            File.Copy(Path.Combine(RepoPaths.ExampleProject, "data", "tweets.jsonl"), Path.Combine(sandbox.ProjectDir, include.Replace("*", "tweets")));
        }
        File.Copy(Path.Combine(RepoPaths.ExampleProject, "lora.yaml"), Path.Combine(sandbox.ProjectDir, (string)project.Descendants("LoraConfig").Single().Attribute("Include")!));
        sandbox.SetLoraValue("max_steps", "2");
        sandbox.SetLoraValue("eval_steps", "0");
        // The snippet's base model, as the tiny stand-in (real Llama-3 tokenizer): served by the hub
        // test server under the snippet's id, or written to the snippet's folder.
        await using var hub = await HubTestServer.StartAsync();
        var baseModel = Property("BaseModel");
        var tiny = Path.Combine(sandbox.Root, "tiny-model");
        TinyBaseModel.Write(tiny, sandbox.Root);
        if (Directory.Exists(Path.Combine(sandbox.ProjectDir, baseModel)) || !baseModel.Contains('/') || baseModel.StartsWith('.') || baseModel.Split('/').Length != 2)
            ModelProjectSandbox.CopyAll(tiny, Path.Combine(sandbox.ProjectDir, baseModel));
        else
        {
            hub.Publish(baseModel.Split('@')[0], Directory.GetFiles(tiny).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes));
            sandbox.Environment["HF_ENDPOINT"] = hub.Endpoint;
            sandbox.Environment["HF_HUB_CACHE"] = Path.Combine(sandbox.Root, "hf-cache");
        }

        var build = sandbox.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());

        // The optional parts whose cells are empty are gone, with no stray spaces or punctuation.
        var texts = new[] { "train.jsonl", "validation.jsonl" }
            .Select(f => Path.Combine(sandbox.ProjectDir, "obj", "finetune", "formatted", f))
            .Where(File.Exists)
            .SelectMany(File.ReadLines)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!)
            .Where(t => t.Contains("passenger", StringComparison.OrdinalIgnoreCase) || t.Contains("age is", StringComparison.Ordinal))
            .ToList();
        Assert.Equal(3, texts.Count);
        Assert.Contains(texts, t => t.Contains("<|end_header_id|>\n\nThe passenger embarked from S. Their age is 22.<|eot_id|>", StringComparison.Ordinal) && t.Contains("<|end_header_id|>\n\n0<|eot_id|>", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.Contains("<|end_header_id|>\n\nThe passenger embarked from Q.<|eot_id|>", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.Contains("<|end_header_id|>\n\nTheir age is 38.<|eot_id|>", StringComparison.Ordinal) && t.Contains("<|end_header_id|>\n\n1<|eot_id|>", StringComparison.Ordinal));

        var name = Property("ModelName");
        foreach (var quantization in Property("GgufQuantizations").Split(';'))
            Assert.True(File.Exists(Path.Combine(sandbox.OutputDir, $"{name}-{Property("ModelVersion")}.{quantization}.gguf")), $"{quantization} GGUF missing:\n{build}");
    }
}
