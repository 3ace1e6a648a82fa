using System.CommandLine;
using FineTune.Gguf.Format;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune inspect &lt;file.gguf&gt; [--json]</c>: a GGUF file's metadata and tensor table.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("file") { Description = "The GGUF file to inspect." };
        var json = new Option<bool>("--json") { Description = "Print the header as JSON (metadata arrays in full)." };
        var command = new Command("inspect", "Show a GGUF file's metadata and tensors.");
        command.Arguments.Add(file);
        command.Options.Add(json);
        command.SetAction(parse =>
        {
            var gguf = GgufReader.Read(parse.GetValue(file)!.FullName);
            Console.Out.Write(parse.GetValue(json) ? GgufDescription.ToJson(gguf) + Environment.NewLine : GgufDescription.ToText(gguf));
            return 0;
        });
        return command;
    }
}
