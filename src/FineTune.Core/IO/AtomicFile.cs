namespace FineTune.Core.IO;

/// <summary>
/// Writes files and folders so that a reader never sees a half-written artifact: content goes to a
/// temporary sibling first and is renamed into place only once complete. A crash or Ctrl+C leaves
/// either the old file or none, plus a temporary that the next run overwrites.
/// </summary>
public static class AtomicFile
{
    /// <summary>Opens a temporary sibling of <paramref name="path"/>, lets <paramref name="write"/> fill it, then renames it over <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = TempSibling(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no BOM) atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var bytes = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(bytes); });

    /// <summary>Writes bytes atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>
    /// Fills a temporary folder next to <paramref name="directory"/> and renames it into place,
    /// replacing an older one. Used for multi-file outputs (an adapter, a cache entry).
    /// </summary>
    public static void WriteDirectory(string directory, Action<string> fill)
    {
        var full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = TempSibling(full);
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            // The old folder is renamed away before it is deleted: deleting it in place would let a
            // kill in the middle leave a folder with some of its files gone, which a reader would take
            // for a complete one. A folder cannot be renamed over a non-empty one, so for an instant
            // neither exists; a reader then sees none, never a torn one.
            var old = Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + ".old-" + Environment.ProcessId);
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
            if (Directory.Exists(full)) Directory.Move(full, old);
            Directory.Move(tmp, full);
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static string TempSibling(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + ".tmp-" + Environment.ProcessId);

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
