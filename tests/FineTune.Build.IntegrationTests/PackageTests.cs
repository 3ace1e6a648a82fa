namespace FineTune.Build.IntegrationTests;

/// <summary>
/// What a user gets: `dotnet pack` produces the FineTune.Build package, and a model repository
/// outside this repository that references it from a feed builds end to end.
/// </summary>
[Collection("pipeline")]
public sealed class PackageTests
{
    [Fact]
    public void Packed_package_builds_a_model_repository_that_references_it()
    {
        var root = Directory.CreateTempSubdirectory("ft-pkg-").FullName;
        try
        {
            var feed = Path.Combine(root, "feed");
            // A version of its own, so the global packages folder can never serve a stale copy.
            var version = "0.1.0-it." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff");
            var pack = ModelProjectSandbox.Run("dotnet",
                ["pack", Path.Combine(RepoPaths.Root, "src", "FineTune.Build", "FineTune.Build.csproj"), "-o", feed, "-p:PackageVersion=" + version, "-nodeReuse:false", "-tl:off"],
                RepoPaths.Root);
            Assert.True(pack.Succeeded, pack.ToString());
            var nupkg = Path.Combine(feed, $"FineTune.Build.{version}.nupkg");
            Assert.True(File.Exists(nupkg), pack.ToString());
            using (var zip = System.IO.Compression.ZipFile.OpenRead(nupkg))
            {
                var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
                foreach (var expected in new[] { "build/FineTune.Build.props", "build/FineTune.Build.targets", "buildTransitive/FineTune.Build.targets", "tasks/FineTune.Build.dll", "tools/finetune.dll" })
                    Assert.Contains(expected, entries);
            }

            // A user's repository: its own folder, no Directory.Build files from this repository.
            var project = Path.Combine(root, "caps-model");
            Directory.CreateDirectory(Path.Combine(project, "data"));
            File.Copy(Path.Combine(RepoPaths.ExampleProject, "data", "tweets.jsonl"), Path.Combine(project, "data", "tweets.jsonl"));
            File.WriteAllText(Path.Combine(project, "lora.yaml"), "r: 4\nlora_alpha: 8\nmax_steps: 2\nper_device_train_batch_size: 2\ngradient_accumulation_steps: 1\nmax_seq_length: 128\nlearning_rate: 0.001\n");
            File.WriteAllText(Path.Combine(root, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(project, "caps-model.csproj"), $"""
                <Project Sdk="Microsoft.Build.NoTargets/3.7.0">
                  <PropertyGroup>
                    <TargetFramework>net10.0</TargetFramework>
                    <ModelName>caps</ModelName>
                    <ModelVersion>0.2.0-beta.1+build.7</ModelVersion>
                    <BaseModel>models/base</BaseModel>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="FineTune.Build" Version="{version}" />
                    <FineTuneDataset Include="data/tweets.jsonl" Format="sharegpt" />
                    <ChatTemplate Include="llama-3" />
                    <LoraConfig Include="lora.yaml" />
                  </ItemGroup>
                </Project>
                """);

            // The base model comes from the packaged CLI itself.
            var cli = Path.Combine(RepoPaths.Root, "src", "FineTune.Build", "obj", "packcli", "finetune.dll");
            var tiny = ModelProjectSandbox.Run("dotnet",
                [cli, "new-tiny-model", "--tokenizer", Path.Combine(RepoPaths.Root, "node_modules", "@lenml", "tokenizer-llama3", "models"), "--out", Path.Combine(project, "models", "base")],
                project);
            Assert.True(tiny.Succeeded, tiny.ToString());

            var build = ModelProjectSandbox.Run("dotnet", ["build", Path.Combine(project, "caps-model.csproj"), "-nodeReuse:false", "-tl:off", "-v:m"], project);
            Assert.True(build.Succeeded, build.ToString());
            var gguf = Path.Combine(project, "bin", "Debug", "caps-0.2.0-beta.1+build.7.Q8_0.gguf");
            Assert.True(File.Exists(gguf), build.ToString());
            Assert.True(File.Exists(Path.Combine(project, "bin", "Debug", "Modelfile")));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
