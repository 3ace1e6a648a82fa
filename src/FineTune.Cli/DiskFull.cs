namespace FineTune.Cli;

/// <summary>Recognises "no space left on the device" among I/O errors, on Linux, macOS and Windows.</summary>
internal static class DiskFull
{
    private const int Enospc = 28;               // Linux and macOS errno
    private const int ErrorHandleDiskFull = 39;  // Windows
    private const int ErrorDiskFull = 112;       // Windows

    public static bool Is(IOException e) =>
        (e.HResult & 0xFFFF) is Enospc or ErrorHandleDiskFull or ErrorDiskFull
        || e.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase);

    public static string Message(IOException e) =>
        $"No space left on the device while writing ({e.Message.TrimEnd('.')}). Free space on the disk holding FineTuneCacheDir " +
        "(or point FineTuneCacheDir at one with room) and build again; the step's partial output was not kept.";
}
