using System.Runtime.InteropServices;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Backends.Cuda.Interop;

/// <summary>
/// Finds the CUDA shared libraries the way users have them: first through the system loader
/// (<c>LD_LIBRARY_PATH</c>, the ldconfig cache), then in the CUDA toolkit folders and in pip's
/// <c>site-packages/nvidia/*/lib</c> folders. When nothing loads, the error lists every place tried.
/// </summary>
internal static class NativeLibraryLocator
{
    /// <summary>Extra folders to search first, separated by the path separator.</summary>
    public const string OverrideVariable = "FINETUNE_CUDA_LIBRARY_PATH";

    /// <summary>
    /// Loads the first of <paramref name="fileNames"/> that the loader or a known folder has.
    /// Throws <see cref="FineTuneException"/> with <paramref name="errorCode"/> naming what was looked for and where.
    /// </summary>
    public static IntPtr Load(string what, IReadOnlyList<string> fileNames, string errorCode, string installHint, out string loadedFrom)
    {
        var tried = new List<string>();
        foreach (var dir in OverrideFolders())
        {
            if (TryLoadFrom(dir, fileNames, out var handle, out loadedFrom))
                return handle;
            tried.Add(dir);
        }

        foreach (var name in fileNames)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
            {
                loadedFrom = name + " (system loader)";
                return handle;
            }
        }

        foreach (var dir in KnownFolders())
        {
            if (TryLoadFrom(dir, fileNames, out var handle, out loadedFrom))
                return handle;
            tried.Add(dir);
        }

        var ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        var message =
            $"{what} was not found: none of {string.Join(", ", fileNames)} could be loaded. Looked through the system loader " +
            $"(LD_LIBRARY_PATH={(string.IsNullOrEmpty(ld) ? "<unset>" : ld)} and the ldconfig cache)" +
            (tried.Count == 0 ? "" : $" and in: {string.Join(", ", tried.Distinct())}") +
            $". {installHint} Or set {OverrideVariable} to the folder that holds it.";
        throw new FineTuneException(errorCode, message);
    }

    private static bool TryLoadFrom(string dir, IReadOnlyList<string> fileNames, out IntPtr handle, out string loadedFrom)
    {
        foreach (var name in fileNames)
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out handle))
            {
                loadedFrom = path;
                return true;
            }
        }
        handle = IntPtr.Zero;
        loadedFrom = "";
        return false;
    }

    private static IEnumerable<string> OverrideFolders() =>
        (Environment.GetEnvironmentVariable(OverrideVariable) ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Toolkit folders (newest first) and pip's NVIDIA wheels' lib folders, in that order.</summary>
    internal static IEnumerable<string> KnownFolders()
    {
        foreach (var variable in new[] { "CUDA_PATH", "CUDA_HOME", "CUDA_ROOT" })
        {
            var root = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(root))
                continue;
            yield return Path.Combine(root, "targets", "x86_64-linux", "lib");
            yield return Path.Combine(root, "lib64");
            yield return Path.Combine(root, "bin");
        }

        foreach (var root in ToolkitRoots())
        {
            yield return Path.Combine(root, "targets", "x86_64-linux", "lib");
            yield return Path.Combine(root, "targets", "sbsa-linux", "lib");
            yield return Path.Combine(root, "lib64");
        }

        foreach (var sitePackages in SitePackagesFolders())
        {
            var nvidia = Path.Combine(sitePackages, "nvidia");
            if (!Directory.Exists(nvidia))
                continue;
            foreach (var package in SafeDirectories(nvidia).Order(StringComparer.Ordinal))
            {
                var lib = Path.Combine(package, "lib");
                if (Directory.Exists(lib))
                    yield return lib;
            }
        }
    }

    private static IEnumerable<string> ToolkitRoots()
    {
        var roots = new List<string> { "/usr/local/cuda" };
        roots.AddRange(SafeDirectories("/usr/local")
            .Where(d => Path.GetFileName(d).StartsWith("cuda-", StringComparison.Ordinal))
            .OrderByDescending(d => ParseVersion(Path.GetFileName(d)["cuda-".Length..])));
        roots.Add("/opt/cuda");
        return roots;
    }

    private static Version ParseVersion(string text) => Version.TryParse(text.Contains('.') ? text : text + ".0", out var v) ? v : new Version(0, 0);

    private static IEnumerable<string> SitePackagesFolders()
    {
        var prefixes = new List<string>();
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
        {
            var value = Environment.GetEnvironmentVariable(variable);
            if (!string.IsNullOrEmpty(value))
                prefixes.Add(value);
        }
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home))
            prefixes.Add(Path.Combine(home, ".local"));
        // The Python first on PATH (a venv's bin, say) and its prefix: pip puts NVIDIA's wheels there.
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            if (File.Exists(Path.Combine(dir, "python3")) && Path.GetDirectoryName(dir.TrimEnd('/')) is { Length: > 0 } prefix)
                prefixes.Add(prefix);
        }
        prefixes.Add("/usr/local");
        prefixes.Add("/usr");

        foreach (var prefix in prefixes)
        {
            var lib = Path.Combine(prefix, "lib");
            foreach (var python in SafeDirectories(lib).Where(d => Path.GetFileName(d).StartsWith("python3", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                yield return Path.Combine(python, "site-packages");
                yield return Path.Combine(python, "dist-packages");
            }
        }
        yield return "/usr/lib/python3/dist-packages";
    }

    private static IEnumerable<string> SafeDirectories(string dir)
    {
        try
        {
            return Directory.Exists(dir) ? Directory.GetDirectories(dir) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
