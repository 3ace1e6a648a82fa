namespace FineTune.Tokenizers.Models;

/// <summary>
/// GPT-2's reversible byte-to-character mapping: printable Latin-1 bytes map to themselves, the
/// other 68 bytes to U+0100 upwards, so every byte sequence is a string of visible characters.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToCharTable = Build();
    private static readonly Dictionary<char, byte> CharToByteTable = ByteToCharTable.Select((c, b) => (c, b)).ToDictionary(x => x.c, x => (byte)x.b);

    private static char[] Build()
    {
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }

    /// <summary>The character that stands for <paramref name="b"/> in byte-level vocabularies.</summary>
    public static char ByteToChar(byte b) => ByteToCharTable[b];

    /// <summary>The byte a byte-level character stands for, or false for any other character.</summary>
    public static bool TryCharToByte(char c, out byte b) => CharToByteTable.TryGetValue(c, out b);

    /// <summary>
    /// The raw bytes of a byte-level token string, or null when it contains a character outside
    /// the alphabet (an added token such as <c>&lt;|eot_id|&gt;</c> is plain text, not byte-level).
    /// </summary>
    public static byte[]? TokenToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
            if (!TryCharToByte(token[i], out bytes[i])) return null;
        return bytes;
    }
}
