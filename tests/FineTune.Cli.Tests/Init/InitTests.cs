using System.Text.Json;
using System.Xml.Linq;
using FineTune.Cli.Init;
using FineTune.Core.Config;
using FineTune.Core.Diagnostics;
using YamlDotNet.RepresentationModel;

namespace FineTune.Cli.Tests.Init;

public class InitTests
{
    private static readonly string[] ExpectedFiles =
        ["tweet-bot.csproj", "lora.yaml", "data/train.jsonl", ".gitignore", ".github/workflows/build.yml", "README.md"];

    [Fact]
    public void Writes_every_repository_file()
    {
        using var dir = new TempDir();
        var written = ModelRepositoryScaffolder.Create(dir.Path, "tweet-bot", "models/base");
        Assert.Equal(ExpectedFiles.Order(), written.Order());
        foreach (var f in ExpectedFiles) Assert.True(File.Exists(dir.File(f)), f);
    }

    [Fact]
    public void Lora_yaml_loads_with_the_tutorial_defaults()
    {
        using var dir = new TempDir();
        ModelRepositoryScaffolder.Create(dir.Path, "m", "models/base");
        var c = TrainingConfigLoader.Load(dir.File("lora.yaml"));
        // Unsloth "Llama-3 + Ollama" notebook: get_peft_model(...) and TrainingArguments(...).
        Assert.Equal(16, c.R);
        Assert.Equal(16, c.LoraAlpha);
        Assert.Equal(0, c.LoraDropout);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], c.TargetModules);
        Assert.Equal(2, c.PerDeviceTrainBatchSize);
        Assert.Equal(4, c.GradientAccumulationSteps);
        Assert.Equal(5, c.WarmupSteps);
        Assert.Equal(60, c.MaxSteps);
        Assert.Equal(0.0002, c.LearningRate);
        Assert.Equal(0.01, c.WeightDecay);
        Assert.Equal("linear", c.LrSchedulerType);
        Assert.Equal(3407, c.Seed);
        Assert.Equal(2048, c.MaxSeqLength);
        // Commented, so people know what each knob does.
        Assert.Contains("# ", File.ReadAllText(dir.File("lora.yaml")));
    }

    [Fact]
    public void Project_file_references_the_package_and_declares_the_items()
    {
        using var dir = new TempDir();
        ModelRepositoryScaffolder.Create(dir.Path, "tweet-bot", "models/llama");
        var project = XDocument.Load(dir.File("tweet-bot.csproj")).Root!;
        Assert.Equal("Project", project.Name.LocalName);
        Assert.Equal("Microsoft.Build.NoTargets/3.7.0", project.Attribute("Sdk")?.Value);

        string Property(string name) => Assert.Single(project.Elements("PropertyGroup").Elements(name)).Value;
        XElement Item(string type) => Assert.Single(project.Elements("ItemGroup").Elements(type));
        Assert.Equal("tweet-bot", Property("ModelName"));
        Assert.Equal("models/llama", Property("BaseModel"));
        Assert.False(string.IsNullOrEmpty(Property("TargetFramework")));
        Assert.True(NuGet.Versioning.SemanticVersion.TryParse(Property("ModelVersion"), out _));

        var package = Item("PackageReference");
        Assert.Equal("FineTune.Build", package.Attribute("Include")?.Value);
        var version = package.Attribute("Version")?.Value;
        Assert.Equal(ModelRepositoryScaffolder.PackageVersion(), version);
        Assert.True(NuGet.Versioning.NuGetVersion.TryParse(version, out var parsed) && !parsed.HasMetadata, version);

        var dataset = Item("FineTuneDataset");
        Assert.Equal("sharegpt", dataset.Attribute("Format")?.Value);
        Assert.True(File.Exists(dir.File(dataset.Attribute("Include")!.Value)));
        Assert.Equal("llama-3", Item("ChatTemplate").Attribute("Include")?.Value);
        Assert.True(File.Exists(dir.File(Item("LoraConfig").Attribute("Include")!.Value)));
    }

    [Fact]
    public void Sample_data_is_sharegpt_jsonl()
    {
        using var dir = new TempDir();
        ModelRepositoryScaffolder.Create(dir.Path, "m", "models/base");
        var lines = File.ReadAllLines(dir.File("data/train.jsonl"));
        Assert.True(lines.Length >= 3);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var turns = doc.RootElement.GetProperty("conversations").EnumerateArray().ToList();
            var roles = turns.Select(t => t.GetProperty("from").GetString()).Where(r => r != "system").ToList();
            Assert.All(turns, t => Assert.False(string.IsNullOrEmpty(t.GetProperty("value").GetString())));
            Assert.Equal(roles.Count, roles.Select((r, i) => r == (i % 2 == 0 ? "human" : "gpt")).Count(ok => ok));
            Assert.Equal("gpt", roles[^1]);
        }
    }

    [Fact]
    public void Gitignore_excludes_build_outputs_and_models()
    {
        using var dir = new TempDir();
        ModelRepositoryScaffolder.Create(dir.Path, "m", "models/base");
        var lines = File.ReadAllLines(dir.File(".gitignore")).Select(l => l.Trim()).ToHashSet();
        Assert.Contains("bin/", lines);
        Assert.Contains("obj/", lines);
        Assert.Contains("models/", lines);
    }

    [Fact]
    public void Workflow_builds_on_a_gpu_runner_and_caches_the_step_cache()
    {
        using var dir = new TempDir();
        ModelRepositoryScaffolder.Create(dir.Path, "m", "models/base");
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(dir.File(".github/workflows/build.yml"))));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var env = (YamlMappingNode)root["env"];
        var cacheDir = ((YamlScalarNode)env["FINETUNE_CACHE_DIR"]).Value;
        Assert.False(string.IsNullOrEmpty(cacheDir));

        var job = (YamlMappingNode)((YamlMappingNode)root["jobs"])["build"];
        Assert.Contains("gpu", ((YamlScalarNode)job["runs-on"]).Value, StringComparison.OrdinalIgnoreCase);
        var steps = ((YamlSequenceNode)job["steps"]).Children.Cast<YamlMappingNode>().ToList();
        string? Get(YamlMappingNode m, string key) => m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;

        string? PathOf(YamlMappingNode s) => Get((YamlMappingNode)s["with"], "path");
        var restore = Assert.Single(steps, s => Get(s, "uses")?.StartsWith("actions/cache/restore@", StringComparison.Ordinal) == true
                                                && PathOf(s) == "${{ env.FINETUNE_CACHE_DIR }}");
        var save = Assert.Single(steps, s => Get(s, "uses")?.StartsWith("actions/cache/save@", StringComparison.Ordinal) == true
                                             && PathOf(s) == "${{ env.FINETUNE_CACHE_DIR }}");
        var build = Assert.Single(steps, s => Get(s, "run")?.Contains("dotnet build", StringComparison.Ordinal) == true);
        Assert.Contains("-p:FineTuneCacheDir=\"$FINETUNE_CACHE_DIR\"", Get(build, "run"));
        Assert.Contains("-p:FineTuneDevice=cuda", Get(build, "run"));

        // A cancelled or failed build must still save the cache so its training checkpoint survives:
        // restore before the build, save after it with `if: always()` under the key restore computed.
        Assert.True(steps.IndexOf(restore) < steps.IndexOf(build) && steps.IndexOf(build) < steps.IndexOf(save));
        Assert.Equal("always()", Get(save, "if"));
        Assert.Equal($"${{{{ steps.{Get(restore, "id")}.outputs.cache-primary-key }}}}", Get((YamlMappingNode)save["with"], "key"));
        Assert.Contains("github.run_id", Get((YamlMappingNode)restore["with"], "key"));
    }

    [Fact]
    public async Task Refuses_to_overwrite_and_leaves_the_folder_untouched()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("lora.yaml"), "r: 4\n");
        var e = Assert.Throws<FineTuneException>(() => ModelRepositoryScaffolder.Create(dir.Path, "m", "models/base"));
        Assert.Equal("FT7003", e.Code);
        Assert.Contains("lora.yaml", e.Message);
        Assert.Equal("r: 4\n", File.ReadAllText(dir.File("lora.yaml")));
        Assert.Single(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task Second_init_through_the_command_line_fails_with_exit_code_1()
    {
        using var dir = new TempDir();
        Assert.Equal(0, (await CliApp.RunAsync(["init", "--dir", dir.Path, "--name", "first"])));
        Assert.True(File.Exists(dir.File("first.csproj")));
        Assert.Equal(1, (await CliApp.RunAsync(["init", "--dir", dir.Path, "--name", "first"])));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("-dash-first")]
    [InlineData("ünïcode")]
    [InlineData("a/b")]
    public void Rejects_names_that_are_not_valid_model_names(string name)
    {
        using var dir = new TempDir();
        var e = Assert.Throws<FineTuneException>(() => ModelRepositoryScaffolder.Create(dir.Path, name, "models/base"));
        Assert.Equal("FT7002", e.Code);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void Default_name_is_the_folder_name()
    {
        using var dir = new TempDir();
        var target = Path.Combine(dir.Path, "my-model");
        ModelRepositoryScaffolder.Create(target, null, "models/base");
        Assert.True(File.Exists(Path.Combine(target, "my-model.csproj")));
    }

    [Fact]
    public void Feed_writes_a_nuget_config_whose_source_resolves_to_the_feed_folder_and_nuget_org()
    {
        using var dir = new TempDir();
        var feed = dir.File("FineTune.Build/artifacts/packages");
        Directory.CreateDirectory(feed);
        File.WriteAllBytes(Path.Combine(feed, $"FineTune.Build.{ModelRepositoryScaffolder.PackageVersion()}.nupkg"), []);
        var repo = dir.File("my-model");
        var written = ModelRepositoryScaffolder.Create(repo, null, "models/base", feed);
        Assert.Contains("nuget.config", written);

        var sources = XDocument.Load(Path.Combine(repo, "nuget.config")).Root!.Element("packageSources")!.Elements("add")
            .ToDictionary(e => e.Attribute("key")!.Value, e => e.Attribute("value")!.Value);
        // Relative, as NuGet reads it: from the folder of nuget.config; so side-by-side clones work anywhere.
        Assert.Equal("../FineTune.Build/artifacts/packages", sources["finetune"]);
        Assert.Equal(Path.GetFullPath(feed), Path.GetFullPath(Path.Combine(repo, sources["finetune"])));
        Assert.Equal("https://api.nuget.org/v3/index.json", sources["nuget.org"]);
    }

    [Fact]
    public void Feed_without_the_referenced_package_is_FT7018_and_writes_nothing()
    {
        using var dir = new TempDir();
        var feed = dir.File("empty-feed");
        Directory.CreateDirectory(feed);
        var repo = dir.File("my-model");
        var e = Assert.Throws<FineTuneException>(() => ModelRepositoryScaffolder.Create(repo, null, "models/base", feed));
        Assert.Equal("FT7018", e.Code);
        Assert.Contains("dotnet pack FineTune.Build.sln -o", e.Message);
        Assert.False(Directory.Exists(repo) && Directory.EnumerateFileSystemEntries(repo).Any());
    }

    [Fact]
    public void Feed_url_is_written_as_given()
    {
        using var dir = new TempDir();
        ModelRepositoryScaffolder.Create(dir.Path, "m", "Qwen/Qwen2.5-0.5B-Instruct", "https://pkgs.example.org/nuget/v3/index.json");
        var project = XDocument.Load(dir.File("m.csproj")).Root!;
        Assert.Equal("Qwen/Qwen2.5-0.5B-Instruct", project.Descendants("BaseModel").Single().Value);
        Assert.Contains("value=\"https://pkgs.example.org/nuget/v3/index.json\"", File.ReadAllText(dir.File("nuget.config")));
    }
}
