using System.Text.Json;
using System.Xml.Linq;
using FineTune.Hub.TestServer;
using FineTune.Ollama.TestServer;

namespace FineTune.Build.IntegrationTests.Docs;

/// <summary>
/// The README's "Use it in your own repository" section, walked as a user walks it from a clone:
/// its shell blocks run command by command and its project file is written as printed. The packages
/// come from the feed `dotnet pack` wrote (restored into a packages folder of this test's own, so a
/// stale package of the same version in the user's NuGet cache can neither be used nor replaced),
/// the tool from the tool path it was installed into, the base model by its id from the hub test
/// server, and `dotnet publish` goes to the Ollama test server.
/// </summary>
[Collection("pipeline")]
public sealed class OwnRepositoryWalkthroughTests
{
    private const string Section = "Use it in your own repository";

    // Kaggle Titanic train.csv rows (PassengerId 1, 6, 62): an empty Age and an empty Embarked cell.
    private const string TitanicCsv = """
        PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked
        1,0,3,"Braund, Mr. Owen Harris",male,22,1,0,A/5 21171,7.25,,S
        6,0,3,"Moran, Mr. James",male,,0,0,330877,8.4583,,Q
        62,1,1,"Icard, Miss. Amelie",female,38,0,0,113572,80,B28,

        """;

    [Fact]
    public async Task Readme_own_repository_section_works_verbatim_from_a_clone()
    {
        var blocks = DocSnippets.All().Where(s => s.File == "README.md" && s.Section == Section).ToList();
        var shells = blocks.Where(b => b.Language == "bash").ToList();
        Assert.Equal(2, shells.Count);
        var projectXml = Assert.Single(blocks, b => b.Language == "xml").Text;
        var project = XDocument.Parse(projectXml);
        string Property(string name) => project.Descendants(name).Single().Value.Trim();

        var root = Directory.CreateTempSubdirectory("ft-walk-").FullName;
        HubTestServer? hub = null;
        try
        {
            hub = await HubTestServer.StartAsync();
            await using var ollama = await OllamaTestServer.StartAsync();
            var tools = Path.Combine(root, "tools");
            var shell = new DocShell(RepoPaths.Root)
                // The clone's own artifacts/ and a sibling folder stand in temporary folders, so the
                // checkout under test is left as it was.
                .Substitute("artifacts/packages", Path.Combine(root, "clone-artifacts", "packages"))
                .Substitute("../my-model", Path.Combine(root, "my-model"))
                // A tool path instead of the user's global tools: the same package, found on PATH.
                .Substitute("-g", "--tool-path", tools)
                .Substitute("http://localhost:11434", ollama.BaseUrl);
            shell.Environment["PATH"] = tools + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
            shell.Environment["HF_ENDPOINT"] = hub.Endpoint;
            shell.Environment["HF_HUB_CACHE"] = Path.Combine(root, "hf-cache");
            shell.Environment["MSBUILDDISABLENODEREUSE"] = "1";

            // Getting it: pack, install the tool, init with the feed.
            var getting = DocSnippets.Commands(shells[0]);
            Assert.StartsWith("dotnet pack ", getting[0]);
            shell.Run(getting[0]);
            // From here on NuGet extracts packages into a folder of this test's own: FineTune.Cli and
            // FineTune.Build of this version never enter (or come from) the user's ~/.nuget/packages.
            // (The pack above restores only third-party packages, from the usual cache.)
            shell.Environment["NUGET_PACKAGES"] = Path.Combine(root, "nuget-packages");
            foreach (var command in getting.Skip(1)) shell.Run(command);
            // The base model the README names, on the hub: a tiny stand-in made by the installed tool
            // around the real Llama-3 tokenizer, itself fetched by id from the hub.
            var tokenizerFiles = new[] { "tokenizer.json", "tokenizer_config.json" };
            hub.Publish("lenml/llama3-tokenizer", tokenizerFiles.ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(TinyBaseModel.Llama3Tokenizer, f))));
            var tiny = Path.Combine(root, "tiny-model");
            shell.Run($"finetune new-tiny-model --tokenizer lenml/llama3-tokenizer --out {tiny} --seed 42");
            Assert.Equal(File.ReadAllBytes(Path.Combine(TinyBaseModel.Llama3Tokenizer, "tokenizer.json")), File.ReadAllBytes(Path.Combine(tiny, "tokenizer.json")));
            hub.Publish(Property("BaseModel").Split('@')[0], Directory.GetFiles(tiny).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes));

            var feed = Path.Combine(root, "clone-artifacts", "packages");
            var version = project.Descendants("PackageReference").Single(p => (string?)p.Attribute("Include") == "FineTune.Build").Attribute("Version")!.Value;
            Assert.Equal(
                new[] { $"FineTune.Build.{version}.nupkg", $"FineTune.Cli.{version}.nupkg" },
                Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Equal(Path.Combine(root, "my-model"), shell.WorkingDirectory);
            var repo = shell.WorkingDirectory;
            Assert.True(File.Exists(Path.Combine(repo, "nuget.config")), string.Join('\n', shell.History.Select(h => h.Command)));

            // The project file as the README prints it, in place of the one init wrote, and its CSV.
            var projectFile = Assert.Single(Directory.GetFiles(repo, "*.csproj"));
            File.WriteAllText(projectFile, projectXml);
            File.WriteAllText(Path.Combine(repo, "data", "titanic.csv"), TitanicCsv.Replace("\r\n", "\n"));
            // init's lora.yaml has the tutorial's 60 steps of 2 x 4 examples; two small steps prove the same path in seconds.
            var yaml = File.ReadAllLines(Path.Combine(repo, "lora.yaml"))
                .Where(l => !l.StartsWith("max_steps:") && !l.StartsWith("per_device_train_batch_size:") && !l.StartsWith("gradient_accumulation_steps:") && !l.StartsWith("max_seq_length:"))
                .Append("max_steps: 2").Append("per_device_train_batch_size: 1").Append("gradient_accumulation_steps: 1").Append("max_seq_length: 128");
            File.WriteAllLines(Path.Combine(repo, "lora.yaml"), yaml);

            // Build, chat, publish.
            var commands = DocSnippets.Commands(shells[1]);
            Assert.Equal(["dotnet build", "finetune chat", "dotnet publish"], commands.Select(c => string.Join(' ', DocShell.Split(c).Take(2))));
            var build = shell.Run(commands[0]);
            Assert.True(build.Ran("FineTuneTrain"), build.ToString());
            // The package restored is the one just packed, not an older one of the same version.
            var restored = Path.Combine(root, "nuget-packages", "finetune.build", version, $"finetune.build.{version}.nupkg");
            Assert.Equal(File.ReadAllBytes(Path.Combine(feed, $"FineTune.Build.{version}.nupkg")), File.ReadAllBytes(restored));
            var name = Property("ModelName");
            var output = Path.Combine(repo, "bin", "Debug");
            foreach (var quantization in Property("GgufQuantizations").Split(';'))
                Assert.True(File.Exists(Path.Combine(output, $"{name}-{Property("ModelVersion")}.{quantization}.gguf")), $"{quantization} GGUF missing:\n{build}");
            using (var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output, "model-manifest.json"))))
                Assert.Equal(Property("BaseModel"), manifest.RootElement.GetProperty("base_model").GetProperty("hub_id").GetString());

            var chat = shell.Run(commands[1]);
            Assert.Contains($"{name} {Property("ModelVersion")} (bin/Debug/model-manifest.json)", chat.Output);
            Assert.Contains("adapter obj/finetune/cache/train/", chat.Output);
            // Greedy, the manifest's model answers exactly as the base model with that adapter and template.
            var prompt = DocShell.Split(commands[1])[DocShell.Split(commands[1]).IndexOf("--prompt") + 1];
            var viaManifest = shell.Run($"finetune chat . --temperature 0 --max-tokens 8 --prompt \"{prompt}\"");
            var adapter = Directory.GetDirectories(Path.Combine(repo, "obj", "finetune", "cache", "train")).Single(d => !Path.GetFileName(d).Contains('.'));
            var explicitly = shell.Run($"finetune chat obj/finetune/base-model --adapter {adapter} --chat-template model --system \"{Property("SystemPrompt")}\" --temperature 0 --max-tokens 8 --prompt \"{prompt}\"");
            Assert.Equal(WithoutModelLine(explicitly), WithoutModelLine(viaManifest));

            shell.Run(commands[2]);
            Assert.True(ollama.Models.ContainsKey($"{name}:{Property("ModelVersion")}"), "models: " + string.Join(", ", ollama.Models.Keys));

            // A second build is all up to date.
            var second = shell.Run(commands[0]);
            foreach (var step in new[] { "FineTuneFormat", "FineTuneTokenize", "FineTuneTrain", "FineTuneExport", "FineTuneModelfile", "FineTuneSamples", "FineTuneReport", "FineTuneManifest" })
                Assert.True(second.UpToDate(step) && !second.Ran(step), $"{step} is not up to date:\n{second}");

            // Offline, with the hub gone and the project's own state and step cache deleted, the
            // base model comes from the hub cache alone and everything is made again.
            await hub.DisposeAsync();
            hub = null;
            Directory.Delete(Path.Combine(repo, "obj", "finetune"), recursive: true);
            Directory.Delete(Path.Combine(repo, "bin"), recursive: true);
            shell.Environment["HF_HUB_OFFLINE"] = "1";
            var offline = shell.Run(commands[0]);
            Assert.True(offline.Ran("FineTuneTrain"), offline.ToString());
            Assert.True(File.Exists(Path.Combine(output, "model-manifest.json")), offline.ToString());
        }
        finally
        {
            if (hub is not null) await hub.DisposeAsync();
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The chat's output less the stderr line saying which manifest it chats with.</summary>
    private static string WithoutModelLine(BuildResult chat) =>
        string.Join('\n', chat.Output.Split('\n').Where(l => !l.Contains("model-manifest.json", StringComparison.Ordinal)));
}
