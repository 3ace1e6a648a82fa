using System.Text;
using System.Text.Json;

namespace FineTune.Tokenizers.Tests;

/// <summary>
/// The merge loop's shortcuts against Hugging Face's Rust <c>tokenizers</c> (Tokenizers.DotNet) as
/// the oracle: words long enough for the heap, and SentencePiece-style text merged one ▁word at a
/// time only where the vocabulary allows it.
/// </summary>
public class MergeLoopReferenceTests
{
    private static void AssertSameIds(Tokenizer ours, global::Tokenizers.DotNet.Tokenizer hf, string text, string what)
    {
        var expected = hf.Encode(text).Select(x => (int)x).ToArray();
        var actual = ours.Encode(text, addSpecialTokens: true).Ids;
        Assert.True(expected.SequenceEqual(actual), $"{what}: {JsonSerializer.Serialize(text)}\n  hf   [{string.Join(",", expected)}]\n  ours [{string.Join(",", actual)}]");
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    [InlineData("llama2")]
    public void Words_of_hundreds_of_symbols_merge_as_hugging_face_does(string name)
    {
        var ours = RepoPaths.Load(name);
        var hf = new global::Tokenizers.DotNet.Tokenizer(Path.Combine(RepoPaths.NpmTokenizer(name), "tokenizer.json"));
        var rng = new Random(5);
        var alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüßж中文";
        for (var length = 100; length <= 2000; length *= 2)
        {
            var word = new StringBuilder();
            for (var i = 0; i < length; i++) word.Append(alphabet[rng.Next(alphabet.Length)]);
            AssertSameIds(ours, hf, word.ToString(), $"{name}, {length} letters");
            AssertSameIds(ours, hf, string.Concat(Enumerable.Repeat("ab", length / 2)), $"{name}, repeated pair");
            AssertSameIds(ours, hf, "base64:" + Convert.ToBase64String(Encoding.UTF8.GetBytes(word.ToString())), $"{name}, base64");
        }
    }

    /// <summary>A SentencePiece-style tokenizer.json (spaces become ▁, no pre-tokenizer) with the given merges.</summary>
    private static string SentencePieceJson(string[] vocab, string[] merges) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["version"] = "1.0",
        ["truncation"] = null,
        ["padding"] = null,
        ["added_tokens"] = Array.Empty<object>(),
        ["normalizer"] = new Dictionary<string, object> { ["type"] = "Replace", ["pattern"] = new Dictionary<string, string> { ["String"] = " " }, ["content"] = "\u2581" },
        ["pre_tokenizer"] = null,
        ["post_processor"] = null,
        ["decoder"] = null,
        ["model"] = new Dictionary<string, object?>
        {
            ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
            ["fuse_unk"] = false, ["byte_fallback"] = false,
            ["vocab"] = vocab.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i),
            ["merges"] = merges,
        },
    });

    [Theory]
    // "a▁" joins a letter to the next word's ▁: merging word by word would never form it.
    [InlineData(false, new[] { "a", "b", "\u2581", "a\u2581", "\u2581b", "a\u2581b", "\u2581\u2581", "b\u2581" }, new[] { "a \u2581", "\u2581 b", "a\u2581 b", "\u2581 \u2581", "b \u2581" })]
    // No merge crosses into a ▁word: text is merged word by word.
    [InlineData(true, new[] { "a", "b", "\u2581", "\u2581b", "\u2581\u2581", "ab", "\u2581ab", "\u2581a" }, new[] { "\u2581 b", "\u2581 \u2581", "a b", "\u2581 ab", "\u2581 a" })]
    public void Sentencepiece_text_merges_across_words_exactly_when_the_vocabulary_can(bool wordByWord, string[] vocab, string[] merges)
    {
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "tokenizer.json");
        File.WriteAllText(path, SentencePieceJson(vocab, merges));
        var ours = Tokenizer.Load(path);
        var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        foreach (var text in new[] { "a b ab a  b", "ab  ab   ab b a", " a b", "a", "b a b a b a b a b a b", "  ", "ba ab ba" })
            AssertSameIds(ours, hf, text, wordByWord ? "word by word" : "whole text");
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("ft-merge-loop-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
