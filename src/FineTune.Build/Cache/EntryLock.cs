namespace FineTune.Build.Cache;

/// <summary>
/// A best-effort lock per cache entry (<c>&lt;entry&gt;.lock</c>, an exclusive OS file lock), so two
/// builds sharing a cache do not compute the same step at once, nor train into one checkpoint. It
/// is only an optimisation: where file locks silently succeed (some network file systems) each
/// build still computes into its own temp folder and the first rename wins. The OS drops the lock
/// when its holder dies, so a killed build never blocks the next one.
/// </summary>
internal sealed class EntryLock : IDisposable
{
    private readonly FileStream _stream;

    private EntryLock(FileStream stream) => _stream = stream;

    /// <summary>
    /// Takes the lock, waiting while another build holds it. <paramref name="waiting"/> is called
    /// once when the wait starts; <paramref name="cancelled"/> ends the wait (null is returned).
    /// </summary>
    public static EntryLock? Acquire(string path, Action waiting, Func<bool> cancelled)
    {
        var told = false;
        while (true)
        {
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                // FileShare.None is an exclusive flock on Unix and a share-mode lock on Windows.
                return new EntryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException)
            {
                if (!told) { waiting(); told = true; }
            }
            catch (UnauthorizedAccessException)
            {
                // A read-only cache folder: no lock to be had; the temp-folder rename still keeps entries whole.
                return null;
            }
            if (cancelled()) return null;
            Thread.Sleep(500);
        }
    }

    /// <summary>Releases the lock; the file stays (deleting it would race with a build about to lock it).</summary>
    public void Dispose() => _stream.Dispose();
}
