using System.CommandLine;
using System.Reflection;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune version</c>: the tool version that goes into every fingerprint and manifest.</summary>
internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the tool version (part of every build fingerprint).");
        command.SetAction(_ => { Console.WriteLine(ToolVersion.Current); return 0; });
        return command;
    }
}

/// <summary>The informational version of the tool, used in fingerprints and manifests.</summary>
public static class ToolVersion
{
    /// <summary>e.g. <c>0.1.0+abc123</c>.</summary>
    public static string Current { get; } =
        typeof(ToolVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
}
