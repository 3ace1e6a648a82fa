using System.Runtime.InteropServices;

namespace FineTune.Core.IO;

/// <summary>
/// Files reached through symbolic links, as in the Hugging Face hub cache (snapshots/&lt;commit&gt;/x is
/// a relative link to ../../blobs/&lt;etag&gt;). <see cref="FileInfo.Length"/> and the timestamps of a
/// link describe the link itself (a few dozen bytes), never the file it points to.
/// </summary>
public static partial class FileLinks
{
    /// <summary>The file at the end of any chain of links (the file itself when no part of the path is a link).</summary>
    public static FileInfo Target(string path)
    {
        var info = new FileInfo(path);
        if (OperatingSystem.IsWindows())
            return info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
        // The kernel's answer: a relative link is relative to the folder it physically sits in, which
        // differs from the path's folder when a parent is itself a link (obj/finetune/base-model -> snapshot).
        var resolved = RealPath(info.FullName, IntPtr.Zero);
        if (resolved == IntPtr.Zero) return info;
        try { return new FileInfo(Marshal.PtrToStringUTF8(resolved)!); }
        finally { Free(resolved); }
    }

    /// <summary>Size in bytes of the file the path leads to.</summary>
    public static long Length(string path) => Target(path).Length;

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPath(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr pointer);
}
