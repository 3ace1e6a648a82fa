using System.CommandLine;
using System.Text.Json.Nodes;
using FineTune.Cli.Hub;
using FineTune.Core.IO;

namespace FineTune.Cli.Commands;

/// <summary>
/// <c>finetune download org/name[@revision]</c>: the base model into the Hugging Face hub cache
/// (the build's FineTuneResolveBaseModel step runs it when BaseModel is an id).
/// </summary>
internal static class DownloadCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("model") { Description = "Hugging Face model id, e.g. Qwen/Qwen2.5-0.5B-Instruct or org/name@revision." };
        var link = new Option<string?>("--link") { Description = "Also make this path a link to the snapshot folder (a stable path for the build)." };
        var info = new Option<string?>("--info") { Description = "Write {id, revision, commit, snapshot} as JSON to this file." };
        var command = new Command("download", "Download a model from the Hugging Face hub into its standard cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub).");
        command.Arguments.Add(id);
        command.Options.Add(link);
        command.Options.Add(info);
        command.SetAction(async (parse, ct) =>
        {
            var model = HubModelId.Parse(parse.GetValue(id)!);
            var resolved = await new HubDownloader(HubSettings.FromEnvironment(), Console.WriteLine).ResolveAsync(model, ct);
            Console.WriteLine(resolved.Downloaded.Count == 0
                ? $"{model}: commit {resolved.Commit}, every file already in the cache"
                : $"{model}: commit {resolved.Commit}, downloaded {string.Join(", ", resolved.Downloaded)}");
            if (parse.GetValue(link) is { } linkPath) LinkFolder(Path.GetFullPath(linkPath), resolved.Snapshot);
            if (parse.GetValue(info) is { } infoPath)
                AtomicFile.WriteAllText(infoPath, new JsonObject
                {
                    ["id"] = model.Repo,
                    ["revision"] = model.Revision,
                    ["commit"] = resolved.Commit,
                    ["snapshot"] = resolved.Snapshot,
                }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
            Console.WriteLine(resolved.Snapshot);
            return 0;
        });
        return command;
    }

    /// <summary>Replaces <paramref name="link"/> with a link to <paramref name="target"/> in one rename.</summary>
    private static void LinkFolder(string link, string target)
    {
        if (new DirectoryInfo(link).LinkTarget == target) return;
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        var tmp = link + ".tmp-" + Environment.ProcessId;
        if (new FileInfo(tmp).LinkTarget is not null || File.Exists(tmp)) File.Delete(tmp);
        Directory.CreateSymbolicLink(tmp, target);
        // rename(2) replaces an existing link (never a real folder) atomically.
        if (Directory.Exists(link) && new DirectoryInfo(link).LinkTarget is null)
            throw new FineTune.Core.Diagnostics.FineTuneException("FT3051", $"'{link}' is a real folder, not the link the build keeps there; delete it.");
        if (OperatingSystem.IsWindows())
        {
            if (Directory.Exists(link)) Directory.Delete(link);
            Directory.Move(tmp, link);
        }
        else if (Rename(tmp, link) != 0)
            throw new IOException($"Cannot replace '{link}' (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}).");
    }

    // File.Move refuses a link to a folder; rename(2) swaps links of any kind in one step.
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "rename", SetLastError = true)]
    private static extern int Rename(string from, string to);
}
