using System.Buffers.Binary;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;

namespace FineTune.Core.Datasets;

/// <summary>
/// The <c>.bin</c> file that FineTuneTokenize writes and the trainer reads. Little-endian:
/// magic <c>FTTK</c>, u32 version (1), u32 example count, then per example: u32 length,
/// <c>length</c> × i32 token ids, <c>length</c> × u8 target flags (0 or 1).
/// Deliberately simple so any language can read it for inspection.
/// </summary>
public static class TokenizedDatasetFile
{
    private const uint Magic = 0x4B545446; // "FTTK" read as little-endian u32
    private const uint Version = 1;

    /// <summary>Writes examples atomically.</summary>
    public static void Write(string path, IReadOnlyList<TokenizedExample> examples) =>
        AtomicFile.Write(path, s =>
        {
            using var w = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(Version);
            w.Write((uint)examples.Count);
            foreach (var e in examples)
            {
                if (e.Ids.Length != e.Targets.Length)
                    throw new ArgumentException("Ids and Targets must have the same length.");
                w.Write((uint)e.Ids.Length);
                foreach (var id in e.Ids) w.Write(id);
                foreach (var t in e.Targets) w.Write((byte)(t ? 1 : 0));
            }
        });

    /// <summary>Reads a whole file; a truncated or foreign file is an error naming it.</summary>
    public static IReadOnlyList<TokenizedExample> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var span = bytes.AsSpan();
        int pos = 0;
        uint U32()
        {
            if (pos + 4 > bytes.Length) throw Corrupt(path, "it ends early");
            var v = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos));
            pos += 4;
            return v;
        }
        if (U32() != Magic) throw Corrupt(path, "it is not a FineTune tokenized dataset");
        var version = U32();
        if (version != Version) throw Corrupt(path, $"its version {version} is not supported");
        var count = U32();
        var result = new List<TokenizedExample>((int)Math.Min(count, 1_000_000));
        for (var i = 0; i < count; i++)
        {
            var n = (int)U32();
            if (n < 0 || (long)pos + 5L * n > span.Length) throw Corrupt(path, $"example {i} claims {n} tokens past the end");
            var ids = new int[n];
            for (var t = 0; t < n; t++) ids[t] = BinaryPrimitives.ReadInt32LittleEndian(span[(pos + 4 * t)..]);
            pos += 4 * n;
            var targets = new bool[n];
            for (var t = 0; t < n; t++)
                targets[t] = span[pos + t] switch
                {
                    0 => false,
                    1 => true,
                    var b => throw Corrupt(path, $"example {i} has target flag {b}, not 0 or 1"),
                };
            pos += n;
            result.Add(new TokenizedExample(ids, targets));
        }
        if (pos != span.Length) throw Corrupt(path, $"{span.Length - pos} bytes follow the last example");
        return result;
    }

    private static FineTuneException Corrupt(string path, string why) =>
        new("FT3006", $"Tokenized dataset is unreadable: {why}. Delete it and rebuild.", path);
}
