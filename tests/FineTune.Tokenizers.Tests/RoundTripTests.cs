using System.Text;
using System.Text.Json;

namespace FineTune.Tokenizers.Tests;

/// <summary>decode(encode(s)) == s wherever the tokenizer is lossless, and streaming decode agrees.</summary>
public class RoundTripTests
{
    public static TheoryData<string> Names => new() { "llama3", "qwen3", "llama2", "gemma3" };

    private static IEnumerable<string> Corpus(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Fixture(name)));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToList();
    }

    /// <summary>
    /// Qwen normalizes to NFC, so only NFC text comes back unchanged. Llama 2 (legacy SentencePiece)
    /// prepends ▁ to every section after an added token, which decodes as an extra space, and a ▁ in
    /// the input is indistinguishable from a space. Gemma 3 turns spaces into ▁ too, but adds no prefix.
    /// </summary>
    private static bool Lossless(string name, string text) => name switch
    {
        "qwen3" => text.IsNormalized(NormalizationForm.FormC),
        "llama2" => !text.Contains("<s>") && !text.Contains("</s>") && !text.Contains("<unk>") && !text.Contains('\u2581'),
        "gemma3" => !text.Contains('\u2581'),
        _ => true,
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_of_encode_is_identity(string name)
    {
        var tok = RepoPaths.Load(name);
        var checkedCount = 0;
        foreach (var text in Corpus(name).Where(t => Lossless(name, t)))
        {
            Assert.Equal(text, tok.Decode(tok.Encode(text).Ids));
            checkedCount++;
        }
        Assert.True(checkedCount > 100, $"only {checkedCount} lossless cases");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Streaming_decode_emits_the_same_text_and_only_whole_characters(string name)
    {
        var tok = RepoPaths.Load(name);
        foreach (var text in Corpus(name).Where(t => Lossless(name, t)))
        {
            var stream = tok.CreateStreamingDecoder();
            var sb = new StringBuilder();
            foreach (var id in tok.Encode(text).Ids)
            {
                var piece = stream.Add(id);
                Assert.DoesNotContain('\uFFFD', piece);
                if (piece.Length > 0) Assert.False(char.IsHighSurrogate(piece[^1]), "emitted half a surrogate pair");
                sb.Append(piece);
            }
            Assert.Equal(text, sb.ToString());
        }
    }

    [Fact]
    public void Emoji_split_over_byte_tokens_is_held_back_until_complete()
    {
        var tok = RepoPaths.Load("llama2");
        // U+1F980 is not in Llama 2's vocabulary: four <0xNN> byte-fallback tokens (UTF-8 F0 9F A6 80).
        var ids = tok.Encode("🦀").Ids;
        Assert.Equal(new[] { "▁", "<0xF0>", "<0x9F>", "<0xA6>", "<0x80>" }, ids.Select(i => tok.IdToToken(i)).ToArray());
        var stream = tok.CreateStreamingDecoder();
        var emitted = ids.Select(stream.Add).ToArray();
        Assert.Equal(new[] { "", "", "", "", "🦀" }, emitted);
    }

    [Fact]
    public void Skip_special_tokens_drops_control_tokens()
    {
        var tok = RepoPaths.Load("llama3");
        var ids = tok.Encode("<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>").Ids;
        Assert.Equal("assistant\n\nHi!", tok.Decode(ids, skipSpecialTokens: true));
        Assert.Equal("<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>", tok.Decode(ids));
    }
}
