using FineTune.Core.IO;

namespace FineTune.Cli.Hub;

/// <summary>
/// One model's folder in the hub cache, laid out as huggingface_hub lays it out:
/// <c>blobs/&lt;etag&gt;</c> (the bytes), <c>refs/&lt;revision&gt;</c> (a commit hash) and
/// <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c>, a relative link to its blob.
/// </summary>
internal sealed class HubCache(string cacheRoot, HubModelId id)
{
    public string RepoFolder { get; } = Path.Combine(cacheRoot, id.CacheFolderName);

    public string Blob(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string Snapshot(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    /// <summary>The commit a branch or tag pointed to when last resolved, or the revision itself when it is a commit.</summary>
    public string? CommitOf(string revision)
    {
        if (HubModelId.IsCommit(revision)) return revision;
        var file = Path.Combine(RepoFolder, "refs", revision);
        return File.Exists(file) ? File.ReadAllText(file).Trim() : null;
    }

    /// <summary>Records the commit of a branch or tag, atomically and only when it changed.</summary>
    public void SetRef(string revision, string commit)
    {
        if (HubModelId.IsCommit(revision) || CommitOf(revision) == commit) return;
        AtomicFile.WriteAllText(Path.Combine(RepoFolder, "refs", revision), commit);
    }

    /// <summary>Points <c>snapshots/commit/file</c> at its blob with a relative link, replacing any older one.</summary>
    public void Link(string commit, string file, string etag)
    {
        var link = Path.Combine(Snapshot(commit), file);
        var folder = Path.GetDirectoryName(link)!;
        Directory.CreateDirectory(folder);
        var target = Path.GetRelativePath(folder, Blob(etag));
        var info = new FileInfo(link);
        if (info.LinkTarget == target) return;
        var tmp = link + ".tmp-" + Environment.ProcessId;
        if (File.Exists(tmp) || new FileInfo(tmp).LinkTarget is not null) File.Delete(tmp);
        File.CreateSymbolicLink(tmp, target);
        File.Move(tmp, link, overwrite: true);
    }
}
