using FineTune.Core.IO;

namespace FineTune.Cli.Hub;

/// <summary>
/// Blobs whose hash was checked, with the size and time they had then (<c>.finetune-verified</c> in
/// the model's cache folder). A blob whose size or time moved since is hashed again before use, so a
/// corrupted file is caught without re-reading gigabytes on every build.
/// </summary>
internal sealed class VerifiedBlobs
{
    private readonly string _file;
    private readonly Dictionary<string, (long Size, long Ticks)> _known = new(StringComparer.Ordinal);
    private bool _dirty;

    public VerifiedBlobs(string repoFolder)
    {
        _file = Path.Combine(repoFolder, ".finetune-verified");
        if (!File.Exists(_file)) return;
        foreach (var line in File.ReadAllLines(_file))
            if (line.Split('\t') is [var etag, var size, var ticks] && long.TryParse(size, out var s) && long.TryParse(ticks, out var t))
                _known[etag] = (s, t);
    }

    /// <summary>Whether the blob holds what its name says; <paramref name="size"/> is the announced size when known.</summary>
    public bool Check(string blob, long? size = null)
    {
        if (!File.Exists(blob)) return false;
        var info = new FileInfo(blob);
        var etag = info.Name;
        if (size is { } s && info.Length != s) return false;
        if (_known.TryGetValue(etag, out var k) && k == (info.Length, info.LastWriteTimeUtc.Ticks)) return true;
        if (!BlobCheck.Matches(blob, etag, info.Length)) return false;
        Record(blob);
        return true;
    }

    public void Record(string blob)
    {
        var info = new FileInfo(blob);
        _known[info.Name] = (info.Length, info.LastWriteTimeUtc.Ticks);
        _dirty = true;
    }

    public void Save()
    {
        if (!_dirty) return;
        AtomicFile.WriteAllText(_file, string.Concat(_known.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}\t{kv.Value.Size}\t{kv.Value.Ticks}\n")));
    }
}
