using FineTune.Core.Diagnostics;

namespace FineTune.Tokenizers.Tests;

/// <summary>Small hand-written tokenizer.json files: supported constructs work, unsupported ones fail loudly.</summary>
public class LoaderTests
{
    /// <summary>A byte-level BPE over "a", "b", "ab", "abb" plus the components given.</summary>
    private static string Json(string normalizer = "null", string preTokenizer = """{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}""",
        string decoder = """{"type": "ByteLevel"}""", string postProcessor = "null", string model = "")
    {
        var bpe = model.Length > 0 ? model : """
            {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "abb": 3, "Ġ": 4, "Ġa": 5}, "merges": [["a", "b"], "ab b", "Ġ a"]}
            """;
        return $$"""
            {"version": "1.0", "added_tokens": [{"id": 6, "content": "<|end|>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false}],
             "normalizer": {{normalizer}}, "pre_tokenizer": {{preTokenizer}}, "post_processor": {{postProcessor}}, "decoder": {{decoder}}, "model": {{bpe}}}
            """;
    }

    [Fact]
    public void Merges_in_both_encodings_apply_in_rank_order()
    {
        var tok = Tokenizer.FromJson(Json());
        // "abb": (a,b) rank 0 -> ab, then (ab,b) rank 1 -> abb; " a" -> Ġa by rank 2.
        Assert.Equal(new[] { 3, 5, 6 }, tok.Encode("abb a<|end|>").Ids);
        Assert.Equal(new[] { ("a", "b"), ("ab", "b"), ("Ġ", "a") }, tok.Merges.ToArray());
        Assert.Equal(TokenizerModelKind.ByteLevelBpe, tok.ModelKind);
        Assert.Equal(7, tok.VocabSize);
        Assert.Equal("<|end|>", tok.IdToToken(6));
        Assert.Contains(6, tok.EndOfTurnTokenIds);
    }

    [Fact]
    public void Offsets_point_into_the_input()
    {
        var tok = Tokenizer.FromJson(Json());
        var e = tok.Encode("abb a<|end|>");
        Assert.Equal(new[] { (0, 3), (3, 5), (5, 12) }, e.Offsets.Select(o => (o.Start, o.End)).ToArray());
    }

    [Theory]
    [InlineData("normalizer", """{"type": "BertNormalizer"}""", "BertNormalizer")]
    [InlineData("normalizer", """{"type": "Precompiled", "precompiled_charsmap": "AA=="}""", "Precompiled")]
    [InlineData("pre_tokenizer", """{"type": "UnicodeScripts"}""", "UnicodeScripts")]
    [InlineData("decoder", """{"type": "WordPiece", "prefix": "##"}""", "WordPiece")]
    [InlineData("post_processor", """{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}""", "RobertaProcessing")]
    [InlineData("model", """{"type": "Unigram", "vocab": {}}""", "Unigram")]
    [InlineData("model", """{"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}""", "dropout")]
    public void Unsupported_construct_fails_with_FT2003_naming_it(string section, string json, string named)
    {
        var text = section switch
        {
            "normalizer" => Json(normalizer: json),
            "pre_tokenizer" => Json(preTokenizer: json),
            "decoder" => Json(decoder: json),
            "post_processor" => Json(postProcessor: json),
            _ => Json(model: json),
        };
        var e = Assert.Throws<FineTuneException>(() => Tokenizer.FromJson(text, sourcePath: "models/x/tokenizer.json"));
        Assert.Equal("FT2003", e.Code);
        Assert.Contains(named, e.Message);
        Assert.Equal("models/x/tokenizer.json", e.File);
    }

    [Fact]
    public void An_unsupported_model_type_names_the_file_and_what_is_supported()
    {
        var e = Assert.Throws<FineTuneException>(() => Tokenizer.FromJson(Json(model: """{"type": "WordLevel", "vocab": {"a": 0}}"""), sourcePath: "m/tokenizer.json"));
        Assert.Equal("FT2003", e.Code);
        Assert.Equal("m/tokenizer.json", e.File);
        Assert.Contains("\"WordLevel\" model", e.Message);
        Assert.Contains("supported: \"BPE\"", e.Message);
    }

    [Fact]
    public void Merge_with_unknown_token_is_FT2002()
    {
        var e = Assert.Throws<FineTuneException>(() => Tokenizer.FromJson(Json(model: """{"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]}""")));
        Assert.Equal("FT2002", e.Code);
    }

    [Fact]
    public void Invalid_json_is_FT2002_with_position()
    {
        var e = Assert.Throws<FineTuneException>(() => Tokenizer.FromJson("{\n  \"model\": [\n"));
        Assert.Equal("FT2002", e.Code);
        Assert.True(e.Line >= 2);
    }

    [Fact]
    public void Missing_file_is_FT2001()
    {
        var e = Assert.Throws<FineTuneException>(() => Tokenizer.Load(Path.Combine(Path.GetTempPath(), "no-such-model-dir-ft")));
        Assert.Equal("FT2001", e.Code);
    }

    [Fact]
    public void Metaspace_sentencepiece_with_byte_fallback_and_template()
    {
        var model = """
            {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "fuse_unk": true,
             "vocab": {"<unk>": 0, "<s>": 1, "▁": 2, "h": 3, "i": 4, "▁h": 5, "▁hi": 6, "<0xC3>": 7, "<0xA9>": 8},
             "merges": ["▁ h", "▁h i"]}
            """;
        var json = Json(
            preTokenizer: """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}""",
            decoder: """{"type": "Sequence", "decoders": [{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}, {"type": "ByteFallback"}, {"type": "Fuse"}]}""",
            postProcessor: """{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}""",
            model: model).Replace("\"id\": 6, \"content\": \"<|end|>\"", "\"id\": 1, \"content\": \"<s>\"");
        var tok = Tokenizer.FromJson(json, """{"bos_token": "<s>", "unk_token": {"content": "<unk>", "__type": "AddedToken"}}""");
        Assert.Equal(TokenizerModelKind.SentencePieceBpe, tok.ModelKind);
        // "hi hé": ▁hi | ▁h é(byte fallback C3 A9); "x" and "y" are unknown and fuse into one <unk>.
        Assert.Equal(new[] { 1, 6, 5, 7, 8, 2, 0 }, tok.Encode("hi hé xy", addSpecialTokens: true).Ids);
        Assert.Equal(1, tok.BosTokenId);
        Assert.Equal(0, tok.UnkTokenId);
        Assert.True(tok.AddBosToken);
        Assert.Equal("hi hé", tok.Decode([6, 5, 7, 8]));
    }

    [Theory]
    [InlineData("Removed", false, new[] { "a", "b", "c" })]
    [InlineData("Isolated", false, new[] { "a", "-", "b", "-", "-", "c" })]
    [InlineData("MergedWithPrevious", false, new[] { "a-", "b-", "-", "c" })]
    [InlineData("MergedWithNext", false, new[] { "a", "-b", "-", "-c" })]
    [InlineData("Contiguous", false, new[] { "a", "-", "b", "--", "c" })]
    [InlineData("Removed", true, new[] { "-", "-", "-" })]
    public void Split_behaviors_follow_tokenizers(string behavior, bool invert, string[] expected)
    {
        // Hand-computed from tokenizers' SplitDelimiterBehavior on "a-b--c" with the regex "-" (each "-"
        // is its own match; a delimiter merges only into a neighbour that is not a delimiter). Every
        // piece is a vocabulary entry, so the tokens show the pieces.
        var vocab = """{"a": 10, "b": 11, "c": 12, "-": 13, "a-": 14, "b-": 15, "-b": 16, "-c": 17, "--": 18}""";
        var json = Json(preTokenizer: $$"""{"type": "Split", "pattern": {"Regex": "-"}, "behavior": "{{behavior}}", "invert": {{(invert ? "true" : "false")}}}""",
            decoder: "null", model: $$"""{"type": "BPE", "vocab": {{vocab}}, "merges": [], "ignore_merges": true}""");
        var tok = Tokenizer.FromJson(json);
        Assert.Equal(expected, tok.Encode("a-b--c").Ids.Select(id => tok.IdToToken(id)).ToArray());
    }
}
