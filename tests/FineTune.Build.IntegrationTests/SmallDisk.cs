using System.Diagnostics;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A small tmpfs mounted on a folder: a real "no space left on device" for a build's cache. Needs
/// the right to mount (root in a container with CAP_SYS_ADMIN); tests using it skip saying why otherwise.
/// </summary>
internal sealed class SmallDisk : IDisposable
{
    private SmallDisk(string path) => Path = path;

    public string Path { get; }

    /// <summary>Why a tmpfs cannot be mounted here, or null when it can.</summary>
    public static string? Unavailable { get; } = Probe();

    public static SmallDisk Mount(string path, string size)
    {
        Directory.CreateDirectory(path);
        Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path);
        return new SmallDisk(path);
    }

    /// <summary>Gives the disk more room (the user freeing space).</summary>
    public void Resize(string size) => Run("mount", "-o", $"remount,size={size}", Path);

    public void Dispose() => Run("umount", Path);

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "mounting a tmpfs needs Linux";
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ft-tmpfs-probe-" + Environment.ProcessId);
        try
        {
            using (Mount(dir, "1m")) { }
            return null;
        }
        catch (InvalidOperationException e)
        {
            return "cannot mount a tmpfs here to fill a disk: " + e.Message;
        }
        finally
        {
            try { Directory.Delete(dir); } catch (IOException) { }
        }
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {err.Trim()}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{file}: {e.Message}");
        }
    }
}

/// <summary>A fact that needs <see cref="SmallDisk"/>; skipped, saying why, where a tmpfs cannot be mounted.</summary>
public sealed class SmallDiskFactAttribute : FactAttribute
{
    public SmallDiskFactAttribute()
    {
        if (SmallDisk.Unavailable is { } reason) Skip = reason;
    }
}
