using System.Text;

namespace FineTune.Data.Tests.Support;

/// <summary>A temporary folder for test inputs, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("finetune-data-").FullName;

    /// <summary>Writes UTF-8 text (optionally with a BOM) and returns the full path.</summary>
    public string Write(string name, string text, bool bom = false)
    {
        var full = System.IO.Path.Combine(Path, name);
        File.WriteAllText(full, text, new UTF8Encoding(bom));
        return full;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
