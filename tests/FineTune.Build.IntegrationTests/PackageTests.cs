namespace FineTune.Build.IntegrationTests;

/// <summary>
/// What a user gets: `dotnet pack` produces the FineTune.Build package, and a model repository
/// scaffolded by `finetune init` outside this repository builds end to end against it.
/// </summary>
[Collection("pipeline")]
public sealed class PackageTests
{
    [Fact]
    public void Init_scaffolds_a_repository_that_builds_with_the_packed_package()
    {
        var root = Directory.CreateTempSubdirectory("ft-pkg-").FullName;
        try
        {
            var feed = Path.Combine(root, "feed");
            var pack = ModelProjectSandbox.Run("dotnet",
                ["pack", Path.Combine(RepoPaths.Root, "src", "FineTune.Build", "FineTune.Build.csproj"), "-o", feed, "-nodeReuse:false", "-tl:off"],
                RepoPaths.Root);
            Assert.True(pack.Succeeded, pack.ToString());
            var nupkg = Assert.Single(Directory.GetFiles(feed, "FineTune.Build.*.nupkg"));
            using (var zip = System.IO.Compression.ZipFile.OpenRead(nupkg))
            {
                var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
                foreach (var expected in new[] { "build/FineTune.Build.props", "build/FineTune.Build.targets", "buildTransitive/FineTune.Build.targets", "tasks/FineTune.Build.dll", "tools/finetune.dll" })
                    Assert.Contains(expected, entries);
            }

            // `finetune init` from the packaged tool, in an empty folder outside this repository.
            // The CLI the package carries in tools/, as `dotnet pack` published it.
            var cli = Path.Combine(RepoPaths.Root, "src", "FineTune.Cli", "bin", "Release", "net10.0", "publish", "finetune.dll");
            var project = Path.Combine(root, "caps-model");
            var init = ModelProjectSandbox.Run("dotnet", [cli, "init", "--dir", project, "--name", "caps-model"], root);
            Assert.True(init.Succeeded, init.ToString());
            var projectFile = Assert.Single(Directory.GetFiles(project, "*.csproj"));

            // The package comes from the local feed into a packages folder of this test's own, so a
            // package of the same version cached by an earlier run can never be used instead.
            File.WriteAllText(Path.Combine(root, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            var tiny = ModelProjectSandbox.Run("dotnet",
                [cli, "new-tiny-model", "--tokenizer", Path.Combine(RepoPaths.Root, "node_modules", "@lenml", "tokenizer-llama3", "models"), "--out", Path.Combine(project, "models", "base")],
                project);
            Assert.True(tiny.Succeeded, tiny.ToString());
            // init's lora.yaml has the tutorial's 60 steps; two are enough to prove the build works.
            File.AppendAllText(Path.Combine(project, "lora.yaml"), "\n");
            var yaml = File.ReadAllLines(Path.Combine(project, "lora.yaml"))
                .Where(l => !l.StartsWith("max_steps:") && !l.StartsWith("per_device_train_batch_size:") && !l.StartsWith("gradient_accumulation_steps:") && !l.StartsWith("max_seq_length:"))
                .Append("max_steps: 2").Append("per_device_train_batch_size: 1").Append("gradient_accumulation_steps: 1").Append("max_seq_length: 128");
            File.WriteAllLines(Path.Combine(project, "lora.yaml"), yaml);

            var build = ModelProjectSandbox.Run("dotnet",
                ["build", projectFile, "-nodeReuse:false", "-tl:off", "-v:m", "-p:RestorePackagesPath=" + Path.Combine(root, "packages")], project);
            Assert.True(build.Succeeded, build.ToString());
            var output = Path.Combine(project, "bin", "Debug");
            Assert.NotEmpty(Directory.GetFiles(output, "caps-model-*.gguf"));
            Assert.True(File.Exists(Path.Combine(output, "Modelfile")), build.ToString());
            Assert.True(File.Exists(Path.Combine(output, "model-manifest.json")), build.ToString());
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
