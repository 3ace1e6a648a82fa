using System.Security.Cryptography;
using System.Text;

namespace FineTune.Build.Fingerprints;

/// <summary>
/// SHA-256 of file contents, remembered per (path, size, last-write time) in a small state file so
/// a no-op build does not re-read multi-gigabyte base models. Timestamps only decide whether to
/// re-hash; fingerprints are always made of content hashes, so a fresh CI checkout (every file's
/// time is "now") still gets cache hits.
/// </summary>
internal sealed class ContentHasher
{
    private readonly string? _stateFile;
    private readonly Dictionary<string, (long Size, long Ticks, string Hash)> _known = new(StringComparer.Ordinal);
    private bool _dirty;

    public ContentHasher(string? stateFile)
    {
        _stateFile = stateFile;
        if (stateFile is null || !File.Exists(stateFile)) return;
        foreach (var line in File.ReadLines(stateFile))
        {
            var parts = line.Split('\t');
            if (parts.Length == 4 && long.TryParse(parts[1], out var size) && long.TryParse(parts[2], out var ticks))
                _known[parts[0]] = (size, ticks, parts[3]);
        }
    }

    /// <summary>Lower-case hex SHA-256 of the file's bytes.</summary>
    public string HashFile(string path)
    {
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        // A hub-cache snapshot file is a link to a blob: the blob's size and time say whether it changed.
        // Unix resolves a relative link against its physical folder (a parent may be a link too): ask the kernel.
        if (!OperatingSystem.IsWindows() && RealPath(full, IntPtr.Zero) is var resolved && resolved != IntPtr.Zero)
        {
            try { info = new FileInfo(System.Runtime.InteropServices.Marshal.PtrToStringUTF8(resolved)!); }
            finally { Free(resolved); }
        }
        var ticks = info.LastWriteTimeUtc.Ticks;
        if (_known.TryGetValue(full, out var k) && k.Size == info.Length && k.Ticks == ticks)
            return k.Hash;
        string hash;
        using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
            hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        _known[full] = (info.Length, ticks, hash);
        _dirty = true;
        return hash;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "realpath")]
    private static extern IntPtr RealPath([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "free")]
    private static extern void Free(IntPtr pointer);

    /// <summary>Lower-case hex SHA-256 of a string's UTF-8 bytes.</summary>
    public static string HashText(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>Persists what was learnt; failures to save only cost a re-hash next time.</summary>
    public void Save()
    {
        if (!_dirty || _stateFile is null) return;
        var sb = new StringBuilder();
        foreach (var (path, (size, ticks, hash)) in _known.OrderBy(p => p.Key, StringComparer.Ordinal))
            if (File.Exists(path))
                sb.Append(path).Append('\t').Append(size).Append('\t').Append(ticks).Append('\t').Append(hash).Append('\n');
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_stateFile)!);
            var tmp = _stateFile + ".tmp-" + Environment.ProcessId;
            File.WriteAllText(tmp, sb.ToString());
            File.Move(tmp, _stateFile, overwrite: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
