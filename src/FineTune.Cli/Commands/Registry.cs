using System.CommandLine;

namespace FineTune.Cli.Commands;

/// <summary>All sub-commands of <c>finetune</c>, in the order <c>--help</c> lists them.</summary>
internal static class Registry
{
    public static IEnumerable<Command> All()
    {
        // One line per command; each command's file owns its options and handler.
        yield return VersionCommand.Create();
        yield return InitCommand.Create();
        yield return FormatCommand.Create();
        yield return NewTinyModelCommand.Create();
        yield return DownloadCommand.Create();
        yield return TrainCommand.Create();
        yield return SamplesCommand.Create();
        yield return GgufCheckCommand.Create();
        yield return ReportCommand.Create();
        yield return ChatCommand.Create();
        yield return ManifestCommand.Create();
        yield return ModelfileCommand.Create();
        yield return PublishCommand.Create();
        yield return ExportCommand.Create();
        yield return InspectCommand.Create();
        yield return TokenizeCommand.Create();
    }
}
