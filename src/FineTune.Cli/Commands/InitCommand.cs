using System.CommandLine;
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
            Description = "Base model folder (Hugging Face layout), relative to the repository.",
            DefaultValueFactory = _ => "models/base",
        };
        var command = new Command("init", "Create a model repository: project file, lora.yaml, sample data, .gitignore, GitHub Actions workflow, README. Never overwrites a file.")
        {
            dir, name, baseModel,
        };
        command.SetAction(parse =>
        {
            var target = parse.GetValue(dir)?.FullName ?? Directory.GetCurrentDirectory();
            var written = ModelRepositoryScaffolder.Create(target, parse.GetValue(name), parse.GetValue(baseModel)!);
            foreach (var path in written) Console.Out.WriteLine($"  created {path}");
            Console.Out.WriteLine($"Put a Hugging Face model in {parse.GetValue(baseModel)} (see README.md), then run 'dotnet build'.");
            return 0;
        });
        return command;
    }
}
