using System.CommandLine;
using FineTune.Cli.Hub;
using FineTune.Cli.Init;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune init</c>: scaffolds a model repository that <c>dotnet build</c> turns into a model.</summary>
internal static class InitCommand
{
    public static Command Create()
    {
        var dir = new Option<DirectoryInfo?>("--dir") { Description = "Folder to create the repository in (default: the current folder; created when missing)." };
        var name = new Option<string?>("--name") { Description = "Model name: the project file's name, ModelName and the Ollama name (default: the folder's name)." };
        var baseModel = new Option<string>("--base-model")
        {
            Description = "Base model: a Hugging Face id (org/name[@revision]) or a folder in Hugging Face layout, relative to the repository.",
            DefaultValueFactory = _ => "models/base",
        };
        var feed = new Option<string?>("--feed")
        {
            Description = "Also write a nuget.config with this package feed (a folder 'dotnet pack FineTune.Build.sln -o <dir>' filled, or a URL) and nuget.org.",
        };
        var command = new Command("init", "Create a model repository: project file, lora.yaml, sample data, .gitignore, GitHub Actions workflow, README. Never overwrites a file.")
        {
            dir, name, baseModel, feed,
        };
        command.SetAction(parse =>
        {
            var target = parse.GetValue(dir)?.FullName ?? Directory.GetCurrentDirectory();
            var written = ModelRepositoryScaffolder.Create(target, parse.GetValue(name), parse.GetValue(baseModel)!, parse.GetValue(feed));
            foreach (var path in written) Console.Out.WriteLine($"  created {path}");
            var chosen = parse.GetValue(baseModel)!;
            Console.Out.WriteLine(HubModelId.Looks(chosen) && !Directory.Exists(Path.Combine(target, chosen)) && !Directory.Exists(Path.Combine(target, chosen.Split('/')[0]))
                ? $"Run 'dotnet build': the first build downloads {chosen} from the Hugging Face hub."
                : $"Put a Hugging Face model in {chosen} (see README.md), then run 'dotnet build'.");
            return 0;
        });
        return command;
    }
}
