using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace FineTune.Cli.Hub;

/// <summary>
/// Whether a blob's bytes are what its name (the hub's ETag) says: a 64-hex ETag is the file's
/// SHA-256 (LFS), a 40-hex one its git blob hash (SHA-1 of "blob &lt;size&gt;\0" + bytes).
/// </summary>
internal static partial class BlobCheck
{
    public static bool Matches(string path, string etag, long size)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        if (stream.Length != size) return false;
        if (Sha256().IsMatch(etag)) return Convert.ToHexStringLower(SHA256.HashData(stream)) == etag;
        if (GitSha1().IsMatch(etag))
        {
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
            var buffer = new byte[1 << 20];
            int n;
            while ((n = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, n);
            return Convert.ToHexStringLower(sha1.GetHashAndReset()) == etag;
        }
        // An ETag of another form says nothing checkable; the size is all there is.
        return true;
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex GitSha1();
}
