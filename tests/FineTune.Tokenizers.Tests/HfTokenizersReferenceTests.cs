using System.Text.Json;

namespace FineTune.Tokenizers.Tests;

/// <summary>
/// A second reference for the ids: Hugging Face's Rust <c>tokenizers</c> itself, in process through
/// Tokenizers.DotNet 1.4.1, on the fixture texts and on this repository's own prose and code. Its
/// <c>Encode</c> always adds the special tokens, so it is compared with ours encoding with them.
/// </summary>
public class HfTokenizersReferenceTests
{
    public static TheoryData<string> Names => new() { "llama3", "qwen3", "llama2", "gemma3" };

    private static IEnumerable<string> Texts(string name)
    {
        using (var doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Fixture(name))))
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
                yield return c.GetProperty("text").GetString()!;
        // Longer documents the fixtures were not written for: the README and the tokenizer's own source, in paragraphs.
        foreach (var file in new[] { "README.md", "src/FineTune.Tokenizers/Models/BpeModel.cs" })
            foreach (var paragraph in File.ReadAllText(Path.Combine(RepoPaths.Root, file)).Split("\n\n"))
                if (paragraph.Length > 0) yield return paragraph;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Ids_with_special_tokens_equal_hugging_face_tokenizers(string name)
    {
        var ours = RepoPaths.Load(name);
        var hf = new global::Tokenizers.DotNet.Tokenizer(Path.Combine(RepoPaths.NpmTokenizer(name), "tokenizer.json"));
        var count = 0;
        foreach (var text in Texts(name))
        {
            count++;
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            var actual = ours.Encode(text, addSpecialTokens: true).Ids;
            Assert.True(expected.SequenceEqual(actual), $"{name}: {JsonSerializer.Serialize(text)}\n  hf   [{string.Join(",", expected)}]\n  ours [{string.Join(",", actual)}]");
        }
        Assert.True(count > 200, $"{name}: only {count} texts");
    }
}
