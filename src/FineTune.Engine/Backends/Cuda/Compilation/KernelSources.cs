using System.Reflection;

namespace FineTune.Engine.Backends.Cuda.Compilation;

/// <summary>
/// The CUDA C sources embedded in this assembly (Backends/Cuda/Kernels/*.cu and *.cuh, logical
/// names <c>FineTune.Cuda.&lt;file&gt;</c>). Kernels are compiled from these at run time.
/// </summary>
public static class KernelSources
{
    private const string Prefix = "FineTune.Cuda.";
    private static readonly Lazy<IReadOnlyDictionary<string, string>> All = new(LoadAll);

    /// <summary>The kernel files (<c>.cu</c>), by file name.</summary>
    public static IEnumerable<string> KernelFiles => All.Value.Keys.Where(k => k.EndsWith(".cu", StringComparison.Ordinal)).Order(StringComparer.Ordinal);

    /// <summary>The headers (<c>.cuh</c>) every kernel file may include, by file name.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Headers => All.Value.Where(kv => kv.Key.EndsWith(".cuh", StringComparison.Ordinal)).OrderBy(kv => kv.Key, StringComparer.Ordinal);

    /// <summary>The text of one embedded file.</summary>
    public static string Get(string fileName) =>
        All.Value.TryGetValue(fileName, out var text) ? text : throw new ArgumentException($"No embedded CUDA source '{fileName}'.", nameof(fileName));

    private static IReadOnlyDictionary<string, string> LoadAll()
    {
        var assembly = typeof(KernelSources).Assembly;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            result[name[Prefix.Length..]] = reader.ReadToEnd();
        }
        return result;
    }
}
