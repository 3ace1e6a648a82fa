using System.Text;
using System.Text.RegularExpressions;
using FineTune.Tokenizers.Models;

namespace FineTune.Tokenizers.Decoding;

/// <summary>One step of a tokenizer.json <c>decoder</c>: transforms the list of token strings.</summary>
internal abstract class Decoder
{
    public abstract List<string> DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<Decoder> steps) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var step in steps) tokens = step.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>Byte-level characters back to bytes, then UTF-8 (invalid sequences become U+FFFD).</summary>
internal sealed class ByteLevelDecoder : Decoder
{
    private static readonly UTF8Encoding Lossy = new(false, false);

    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            // A token with characters outside the alphabet (an added token like "<|eot_id|>" written
            // in plain text) contributes its own UTF-8 bytes, as tokenizers' ByteLevel decoder does.
            var raw = ByteLevelAlphabet.TokenToBytes(token);
            bytes.AddRange(raw ?? Encoding.UTF8.GetBytes(token));
        }
        return [Lossy.GetString(bytes.ToArray())];
    }
}

/// <summary><c>&lt;0xNN&gt;</c> tokens back to bytes; a run of them that is not valid UTF-8 gives one U+FFFD per byte.</summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    private static readonly UTF8Encoding Strict = new(false, true);

    public override List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (TryParseByte(token, out var b)) { pending.Add(b); continue; }
            Flush(pending, output);
            output.Add(token);
        }
        Flush(pending, output);
        return output;
    }

    internal static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }

    private static void Flush(List<byte> pending, List<string> output)
    {
        if (pending.Count == 0) return;
        try { output.Add(Strict.GetString(pending.ToArray())); }
        catch (DecoderFallbackException) { output.Add(new string('\uFFFD', pending.Count)); }
        pending.Clear();
    }
}

internal sealed class FuseDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of <c>content</c> from each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        foreach (var token in tokens)
        {
            var a = 0;
            while (a < start && a < token.Length && token[a] == content) a++;
            var b = token.Length;
            for (var i = 0; i < stop && b > a && token[b - 1] == content; i++) b--;
            output.Add(token[a..b]);
        }
        return output;
    }
}

internal sealed class ReplaceDecoder(string? literal, Regex? regex, string content) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => literal is not null ? (literal.Length == 0 ? t : t.Replace(literal, content, StringComparison.Ordinal)) : regex!.Replace(t, content)).ToList();
}

/// <summary>The replacement character back to spaces; the prepended one is dropped from the first token.</summary>
internal sealed class MetaspaceDecoder(char replacement, bool dropFirstSpace) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i].Replace(replacement, ' ');
            if (i == 0 && dropFirstSpace && t.StartsWith(' ')) t = t[1..];
            output.Add(t);
        }
        return output;
    }
}
