using System.Text;
using System.Text.Json;

namespace FineTune.Tokenizers.Tests;

/// <summary>Token offsets are UTF-16 ranges of the input that cover it in order.</summary>
public class OffsetTests
{
    [Fact]
    public void Llama3_offsets_tile_the_input()
    {
        var tok = RepoPaths.Load("llama3");
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Fixture("llama3")));
        foreach (var text in doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!))
        {
            var e = tok.Encode(text);
            // Tokens that share one character (an emoji split into byte tokens) repeat its range; the
            // distinct ranges, in order, must rebuild the text exactly.
            var rebuilt = new StringBuilder();
            var previousEnd = 0;
            foreach (var o in e.Offsets)
            {
                Assert.InRange(o.Start, 0, o.End);
                Assert.InRange(o.End, o.Start, text.Length);
                if (o.End == previousEnd && rebuilt.Length > 0) continue;
                Assert.Equal(previousEnd, o.Start);
                rebuilt.Append(text, o.Start, o.End - o.Start);
                previousEnd = o.End;
            }
            Assert.Equal(text, rebuilt.ToString());
        }
    }

    [Fact]
    public void Normalized_text_offsets_point_at_the_original_characters()
    {
        // Qwen normalizes to NFC: "e" + U+0301 becomes "é", whose token must cover both input units.
        var tok = RepoPaths.Load("qwen3");
        const string text = "caf" + "e\u0301" + " ok";
        var e = tok.Encode(text);
        Assert.Equal(text.Length, e.Offsets[^1].End);
        var accent = text.IndexOf('\u0301');
        Assert.Contains(e.Offsets, o => o.Start <= accent - 1 && o.End >= accent + 1);
        Assert.All(e.Offsets, o => Assert.InRange(o.End, o.Start, text.Length));
    }
}
