namespace FineTune.Core.IO;

/// <summary>
/// Files reached through symbolic links, as in the Hugging Face hub cache (snapshots/&lt;commit&gt;/x is
/// a relative link to ../../blobs/&lt;etag&gt;). <see cref="FileInfo.Length"/> and the timestamps of a
/// link describe the link itself (a few dozen bytes), never the file it points to.
/// </summary>
public static class FileLinks
{
    /// <summary>The file at the end of any chain of links (the file itself when it is no link).</summary>
    public static FileInfo Target(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
    }

    /// <summary>Size in bytes of the file the path leads to.</summary>
    public static long Length(string path) => Target(path).Length;
}
