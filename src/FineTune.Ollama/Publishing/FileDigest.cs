using System.Security.Cryptography;

namespace FineTune.Ollama.Publishing;

/// <summary>Ollama's blob digests: <c>sha256:</c> followed by the lower-case hex SHA-256 of the file.</summary>
public static class FileDigest
{
    /// <summary>Hashes <paramref name="path"/> by streaming it from disk.</summary>
    public static async Task<string> ComputeAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
    }
}
