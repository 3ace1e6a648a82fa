using System.Globalization;
using System.Reflection;
using System.Text;

using FineTune.Build.Fingerprints;

namespace FineTune.Build.Cache;

/// <summary>
/// The <c>.complete</c> file of a cache entry: a format version, the tool version that wrote it, and
/// every file of the entry with its size, modification time and SHA-256 (ccache's header and
/// checksum, Bazel's output digests). Written last, so an entry without it was never finished.
/// Verification re-hashes only files whose size or time differ from what was recorded, so a no-op
/// build reads no file contents; a copied cache (new times) is hashed once, then remembered in the
/// checkout's hash memo.
/// </summary>
internal sealed class CacheEntryManifest
{
    public const string FileName = ".complete";
    private const string Magic = "finetune-cache-entry";
    public const int FormatVersion = 2;

    public sealed record Entry(string Path, long Size, long Ticks, string Sha256);

    public string Fingerprint { get; private init; } = "";
    public string ToolVersion { get; private init; } = "";
    public IReadOnlyList<Entry> Files { get; private init; } = [];

    /// <summary>The version of the tasks that wrote an entry (informational: the fingerprint already covers the tool's code).</summary>
    public static string CurrentToolVersion { get; } =
        typeof(CacheEntryManifest).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Hashes every file under <paramref name="entryDir"/> (the entry being finished) and writes the manifest last.</summary>
    public static void Write(string entryDir, string fingerprint, ContentHasher hasher)
    {
        var sb = new StringBuilder();
        sb.Append(Magic).Append(' ').Append(FormatVersion.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("fingerprint ").Append(fingerprint).Append('\n');
        sb.Append("tool ").Append(CurrentToolVersion).Append('\n');
        foreach (var file in Directory.EnumerateFiles(entryDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var rel = System.IO.Path.GetRelativePath(entryDir, file).Replace('\\', '/');
            if (rel == FileName) continue;
            var info = new FileInfo(file);
            sb.Append("file\t").Append(info.Length.ToString(CultureInfo.InvariantCulture)).Append('\t')
              .Append(info.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture)).Append('\t')
              .Append(hasher.HashFile(file)).Append('\t').Append(rel).Append('\n');
        }
        var path = System.IO.Path.Combine(entryDir, FileName);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, sb.ToString());
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Parses a manifest; null when the text is not one (an unfinished or older entry).</summary>
    public static CacheEntryManifest? Parse(string text)
    {
        var lines = text.Split('\n');
        if (lines.Length < 3 || lines[0] != $"{Magic} {FormatVersion}") return null;
        if (!lines[1].StartsWith("fingerprint ", StringComparison.Ordinal) || !lines[2].StartsWith("tool ", StringComparison.Ordinal)) return null;
        var files = new List<Entry>();
        foreach (var line in lines.Skip(3))
        {
            if (line.Length == 0) continue;
            var parts = line.Split('\t', 5);
            if (parts.Length != 5 || parts[0] != "file"
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
                || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                || parts[3].Length != 64 || !IsSafeRelative(parts[4]))
                return null;
            files.Add(new Entry(parts[4], size, ticks, parts[3]));
        }
        return new CacheEntryManifest { Fingerprint = lines[1]["fingerprint ".Length..], ToolVersion = lines[2]["tool ".Length..], Files = files };
    }

    /// <summary>
    /// Checks the entry in <paramref name="entryDir"/> against its manifest. Returns null when every
    /// recorded file is there with its recorded content, otherwise what is wrong, for the warning.
    /// </summary>
    public static string? Verify(string entryDir, string fingerprint, ContentHasher hasher)
    {
        var path = System.IO.Path.Combine(entryDir, FileName);
        string text;
        try { text = File.ReadAllText(path); }
        catch (IOException e) { return $"its {FileName} manifest cannot be read ({e.Message})"; }
        var manifest = Parse(text);
        if (manifest is null) return $"its {FileName} manifest is not a format-{FormatVersion} manifest (an older version of FineTune.Build, or damaged)";
        if (manifest.Fingerprint != fingerprint) return $"its manifest belongs to fingerprint {Short(manifest.Fingerprint)}, not {Short(fingerprint)}";
        foreach (var file in manifest.Files)
        {
            var full = System.IO.Path.Combine(entryDir, file.Path);
            var info = new FileInfo(full);
            if (!info.Exists) return $"{file.Path} is missing";
            if (info.Length != file.Size) return $"{file.Path} is {info.Length} bytes, the entry recorded {file.Size}";
            // Same size and time as recorded: taken as unchanged without reading it (the no-op fast path).
            if (info.LastWriteTimeUtc.Ticks == file.Ticks) continue;
            string actual;
            try { actual = hasher.HashFile(full); }
            catch (IOException e) { return $"{file.Path} cannot be read ({e.Message})"; }
            if (actual != file.Sha256) return $"{file.Path} has SHA-256 {Short(actual)}, the entry recorded {Short(file.Sha256)}";
        }
        return null;
    }

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] : hash;

    private static bool IsSafeRelative(string rel) =>
        rel.Length > 0 && !rel.StartsWith('/') && !rel.Split('/').Any(p => p is ".." or "");
}
