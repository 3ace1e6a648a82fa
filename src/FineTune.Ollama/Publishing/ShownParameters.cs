using System.Globalization;
using System.Text;

namespace FineTune.Ollama.Publishing;

/// <summary>
/// Reads the <c>parameters</c> text of Ollama's <c>/api/show</c>: one line per value, written by the
/// server as Go's <c>fmt.Sprintf("%-30s %#v", key, value)</c>, so strings arrive Go-quoted and a list
/// such as <c>stop</c> takes one line per element.
/// </summary>
public static class ShownParameters
{
    /// <summary>Every (name, value) pair in the order the server listed them; quoted values are unquoted.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Parse(string? text)
    {
        var result = new List<KeyValuePair<string, string>>();
        if (string.IsNullOrEmpty(text)) return result;
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var space = line.IndexOf(' ');
            if (space <= 0) throw new FormatException($"parameter line without a value: {line}");
            var key = line[..space];
            var value = line[space..].TrimStart(' ');
            result.Add(KeyValuePair.Create(key, value.StartsWith('"') ? GoUnquote(value) : value));
        }
        return result;
    }

    /// <summary>The values of <paramref name="key"/>, in order (e.g. every <c>stop</c>).</summary>
    public static IReadOnlyList<string> Values(IReadOnlyList<KeyValuePair<string, string>> parameters, string key) =>
        parameters.Where(p => p.Key == key).Select(p => p.Value).ToList();

    /// <summary>Reverses Go's <c>strconv.Quote</c> (the escapes it writes: <c>\a \b \f \n \r \t \v \\ \" \xHH \uHHHH \UHHHHHHHH</c>).</summary>
    public static string GoUnquote(string quoted)
    {
        if (quoted.Length < 2 || quoted[0] != '"' || quoted[^1] != '"') throw new FormatException($"not a Go-quoted string: {quoted}");
        var bytes = new List<byte>();
        var s = quoted[1..^1];
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c != '\\')
            {
                var end = char.IsHighSurrogate(c) && i + 1 < s.Length ? i + 2 : i + 1;
                bytes.AddRange(Encoding.UTF8.GetBytes(s[i..end]));
                i = end - 1;
                continue;
            }
            if (++i >= s.Length) throw new FormatException($"a Go-quoted string ends in a backslash: {quoted}");
            switch (s[i])
            {
                case 'a': bytes.Add(7); break;
                case 'b': bytes.Add(8); break;
                case 'f': bytes.Add(12); break;
                case 'n': bytes.Add(10); break;
                case 'r': bytes.Add(13); break;
                case 't': bytes.Add(9); break;
                case 'v': bytes.Add(11); break;
                case '\\': bytes.Add((byte)'\\'); break;
                case '"': bytes.Add((byte)'"'); break;
                // \x is one byte of possibly invalid UTF-8, which Go writes byte by byte.
                case 'x': bytes.Add(byte.Parse(Hex(s, ref i, 2), NumberStyles.HexNumber)); break;
                case 'u': bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(int.Parse(Hex(s, ref i, 4), NumberStyles.HexNumber)))); break;
                case 'U': bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(int.Parse(Hex(s, ref i, 8), NumberStyles.HexNumber)))); break;
                default: throw new FormatException($"unknown escape \\{s[i]} in {quoted}");
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static string Hex(string s, ref int i, int digits)
    {
        if (i + 1 + digits > s.Length) throw new FormatException($"short escape in {s}");
        var hex = s.Substring(i + 1, digits);
        i += digits;
        return hex;
    }
}
