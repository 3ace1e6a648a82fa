using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;
using FineTune.Gguf.Export;
using FineTune.Gguf.Format;
using FineTune.Gguf.Import;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;
using FineTune.Tokenizers;

namespace FineTune.Gguf.Tests.Import;

/// <summary>
/// The tokenizer read back from a GGUF's own metadata tokenizes as llama.cpp does on that file (the
/// oracle) and as the Hugging Face tokenizer it was exported from, so chatting with the file alone
/// sends the model the ids Ollama sends it.
/// </summary>
public sealed class GgufTokenizerTests
{
    private static readonly string[] Texts =
    [
        "Hello world",
        "<|im_start|>user\nCOUNT 1234567 — héllo wörld, don't stop!<|im_end|>\n",
        "<|start_header_id|>assistant<|end_header_id|>\n\nI'LL   SHOUT 3.14159 🚀🚀 ünïcödé\r\n\tTAB",
        "  leading spaces and trailing   ",
        "数字12345和中文，还有emoji 😀",
    ];

    [Theory]
    [InlineData("llama-bias-tied")]
    [InlineData("qwen3")]
    public void Ids_equal_llama_cpps_and_the_original_tokenizers(string name)
    {
        LlamaNative.EnsureLoaded();
        using var dir = new TempDir();
        var (shape, package) = ArchitecturesVsLlamaCppTests.Case(name);
        var modelDir = dir.File("model");
        RandomHfModel.Write(modelDir, ArchitecturesVsLlamaCppTests.TokenizerDir(package), shape with { NumLayers = 1 }, seed: 3);
        var path = dir.File("m.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.Q8_0, Name = name, Version = "1.0.0", Output = path, ChatTemplate = "{{ messages }}" });

        var fromGguf = GgufTokenizer.Load(GgufReader.Read(path));
        var original = Tokenizer.Load(modelDir);
        foreach (var text in Texts)
        {
            var ours = fromGguf.Encode(text, addSpecialTokens: false).Ids;
            Assert.Equal(LlamaCppOracle.Tokenize(path, text, parseSpecial: true), ours);
            Assert.Equal(original.Encode(text, addSpecialTokens: false).Ids, ours);
            Assert.Equal(text, fromGguf.Decode(ours, skipSpecialTokens: false));
        }
        Assert.Equal(original.EosTokenId, fromGguf.EosTokenId);
        Assert.Equal(original.EndOfTurnTokenIds, fromGguf.EndOfTurnTokenIds);
    }

    // Texts a SentencePiece tokenizer gets wrong in different ways: the space prefix at the start and
    // after special tokens, runs of spaces (user-defined pieces in Gemma), newlines and tabs (byte
    // fallback in Llama 2), emoji and CJK (byte fallback), a literal '▁', special and user-defined tokens in the text.
    private static readonly string[] SentencePieceTexts =
    [
        "Hello world",
        " Hello",
        "  leading spaces and trailing   ",
        "a  b   c    d          e",
        "line one\nline two\n\n\nthree\r\n\tTAB\t\t\n",
        "Héllo wörld — ünïcode ✓ 你好 🤗 😀🚀 𝔘",
        "already \u2581escaped \u2581\u2581 and 3.14159 x=42; don't I'll",
        "<s>[INST] Hi there [/INST] Sure</s><s>[INST]again[/INST]",
        "<unk> and <s>text</s>",
        "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n<table><tr><td>x</td></tr></table>\t\t\n\n\n",
        "<bos><start_of_turn>user\n  indented\n    more<end_of_turn>\n<unused0><mask>[multimodal]",
        "",
    ];

    [Theory]
    [InlineData("mistral")] // Llama 2's tokenizer: a space prefix, byte fallback, <s> and </s>
    [InlineData("gemma3")]  // Gemma 3's: no space prefix, thousands of user-defined pieces, <start_of_turn>
    public void A_sentencepiece_gguf_tokenizes_and_detokenizes_as_llama_cpp_does(string name)
    {
        LlamaNative.EnsureLoaded();
        using var dir = new TempDir();
        var (shape, package) = ArchitecturesVsLlamaCppTests.Case(name);
        var modelDir = dir.File("model");
        RandomHfModel.Write(modelDir, ArchitecturesVsLlamaCppTests.TokenizerDir(package), shape with { NumLayers = 1 }, seed: 3);
        var path = dir.File("m.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.Q8_0, Name = name, Version = "1.0.0", Output = path, ChatTemplate = "{{ messages }}" });

        var fromGguf = GgufTokenizer.Load(GgufReader.Read(path));
        Assert.Equal(TokenizerModelKind.SentencePieceBpe, fromGguf.ModelKind);
        using var llama = new LlamaCppOracle.Vocab(path);
        var original = Tokenizer.Load(modelDir);
        foreach (var text in SentencePieceTexts)
        {
            var ours = fromGguf.Encode(text, addSpecialTokens: false).Ids;
            var theirs = llama.Tokenize(text, parseSpecial: true);
            Assert.True(theirs.SequenceEqual(ours), $"{name} on \"{text.ReplaceLineEndings("\\n")}\": ours [{string.Join(",", ours)}], llama.cpp [{string.Join(",", theirs)}]");
            // The GGUF must give llama.cpp the original tokenizer's pieces and the text back. Left out: a
            // literal '▁' (SentencePiece reads it as a space, so it cannot come back), and on Llama 2 ids
            // (its Hugging Face tokenizer splits a leading run of spaces unlike SentencePiece and llama.cpp)
            // and text after a control token (llama.cpp gives the text after it a space prefix).
            var hf = original.Encode(text, addSpecialTokens: false).Ids;
            if (!text.Contains('\u2581') && (name == "gemma3" || !text.Contains('<')))
                Assert.Equal(text, llama.Detokenize(theirs, removeSpecial: false, unparseSpecial: true));
            if (name == "gemma3" && !text.Contains('\u2581')) Assert.True(hf.SequenceEqual(theirs), $"{name} on \"{text.ReplaceLineEndings("\\n")}\": Hugging Face [{string.Join(",", hf.Select(fromGguf.IdToToken))}], llama.cpp on our GGUF [{string.Join(",", theirs.Select(fromGguf.IdToToken))}]");
            // Text from a user (a plain span) is never cut at control tokens, as llama.cpp without parse_special.
            var plain = fromGguf.Encode(text, [new FineTune.Core.Datasets.TextSpan(0, text.Length)]).Ids;
            var plainTheirs = llama.Tokenize(text, parseSpecial: false);
            Assert.True(plainTheirs.SequenceEqual(plain),
                $"{name} on plain \"{text.ReplaceLineEndings("\\n")}\": ours [{string.Join(",", plain.Select(fromGguf.IdToToken))}], llama.cpp [{string.Join(",", plainTheirs.Select(fromGguf.IdToToken))}]");
            foreach (var skip in new[] { false, true })
            {
                int[] withBos = [fromGguf.BosTokenId!.Value, .. ours];
                Assert.Equal(llama.Detokenize(ours, removeSpecial: skip, unparseSpecial: !skip), fromGguf.Decode(ours, skipSpecialTokens: skip));
                Assert.Equal(llama.Detokenize(withBos, removeSpecial: skip, unparseSpecial: !skip), fromGguf.Decode(withBos, skipSpecialTokens: skip));
            }
        }
        // Every piece alone, as the streaming chat output starts a reply.
        for (var id = 0; id < llama.Count; id++)
            foreach (var skip in new[] { false, true })
                Assert.True(llama.Detokenize([id], skip, !skip) == fromGguf.Decode([id], skip),
                    $"{name} id {id} ({fromGguf.IdToToken(id)}), skip special {skip}: ours \"{fromGguf.Decode([id], skip)}\", llama.cpp \"{llama.Detokenize([id], skip, !skip)}\"");

        Assert.Equal(original.BosTokenId, fromGguf.BosTokenId);
        Assert.Equal(original.EosTokenId, fromGguf.EosTokenId);
        Assert.Equal(original.AddBosToken, fromGguf.AddBosToken);
        // llama.cpp also ends generation at Gemma's "</s>" (there an HTML tag, not special to Hugging Face).
        int[] alsoEnding = name == "gemma3" ? [original.TokenToId("</s>")!.Value] : [];
        Assert.Equal([.. original.EndOfTurnTokenIds, .. alsoEnding], fromGguf.EndOfTurnTokenIds);
        Assert.Equal(original.Encode("Hi", addSpecialTokens: true).Ids, fromGguf.Encode("Hi", addSpecialTokens: true).Ids);
    }

    [Fact]
    public void A_handmade_sentencepiece_vocabulary_meets_llama_cpps_rules_the_real_ones_do_not_reach()
    {
        LlamaNative.EnsureLoaded();
        // Overlapping user-defined tokens ("pq", "qrs": llama.cpp cuts the longer first), merges of equal
        // score (the leftmost wins), a piece whose halves are not pieces, unused and untyped ids, a
        // character without a piece ('é': bytes), no special ids and flags in the file (llama.cpp's defaults).
        var pieces = new List<(string Text, float Score, int Type)>
        {
            ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
        };
        for (var b = 0; b < 256; b++) pieces.Add(($"<0x{b:X2}>", 0, 6));
        pieces.AddRange([
            ("\u2581", -1, 1), ("a", -2, 1), ("b", -2, 1), ("c", -2, 1), ("d", -2, 1), ("p", -3, 1), ("q", -3, 1), ("r", -3, 1), ("s", -3, 1), ("x", -3, 1),
            ("ab", -5, 1), ("bc", -5, 1), ("cd", -5, 1), ("\u2581a", -4, 1), ("\u2581ab", -6, 1), ("abcd", -7, 1), ("xyz", -1, 1), ("\u2581\u2581", -8, 1),
            ("pq", 0, 4), ("qrs", 0, 4), ("<ctl>", 0, 3), ("zz", 0, 5), ("yy", 0, 0),
        ]);
        using var dir = new TempDir();
        var path = new SyntheticLlama
        {
            Hidden = 64, Ffn = 128, Layers = 1, Heads = 4, KvHeads = 2, Vocab = pieces.Count,
            Metadata = w =>
            {
                w.Set("tokenizer.ggml.model", GgufValue.Of("llama"));
                w.Set("tokenizer.ggml.tokens", GgufValue.Of(pieces.Select(p => p.Text).ToArray()));
                w.Set("tokenizer.ggml.scores", GgufValue.Of(pieces.Select(p => p.Score).ToArray()));
                w.Set("tokenizer.ggml.token_type", GgufValue.Of(pieces.Select(p => p.Type).ToArray()));
            },
        }.Write(dir.File("handmade.gguf"));

        var ours = GgufTokenizer.Load(GgufReader.Read(path));
        using var llama = new LlamaCppOracle.Vocab(path);
        foreach (var text in new[] { "abcd", "bcd abc", "pqrs", "xpqrsx <ctl>pq", " ab  ab", "é café", "abc</s><s>x<unk>", "xyz", "zz yy" })
        {
            var ids = ours.Encode(text).Ids;
            Assert.True(llama.Tokenize(text, parseSpecial: true).SequenceEqual(ids),
                $"\"{text}\": ours [{string.Join(",", ids.Select(ours.IdToToken))}], llama.cpp [{string.Join(",", llama.Tokenize(text, parseSpecial: true).Select(ours.IdToToken))}]");
            Assert.Equal(llama.Tokenize(text, parseSpecial: false), ours.Encode(text, [new FineTune.Core.Datasets.TextSpan(0, text.Length)]).Ids);
        }
        var ab = pieces.FindIndex(p => p.Text == "\u2581ab");
        for (var id = 0; id < pieces.Count; id++)
            foreach (var skip in new[] { false, true })
                foreach (var ids in new int[][] { [id], [1, id, ab], [id, ab, 2], [ab, id] })
                    Assert.Equal(llama.Detokenize(ids, skip, !skip), ours.Decode(ids, skip));
        Assert.Equal([1, .. ours.Encode("ab").Ids], ours.Encode("ab", addSpecialTokens: true).Ids);
    }

    [Fact]
    public void A_tokenizer_model_other_than_byte_level_bpe_and_sentencepiece_is_refused_with_FT4046_naming_it()
    {
        using var dir = new TempDir();
        var path = dir.File("bert.gguf");
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of("bert"));
        w.Set("tokenizer.ggml.model", GgufValue.Of("bert"));
        w.Set("tokenizer.ggml.tokens", GgufValue.Of(new[] { "[PAD]", "[UNK]", "hello" }));
        w.Write(path);
        var e = Assert.Throws<FineTuneException>(() => GgufTokenizer.Load(GgufReader.Read(path)));
        Assert.Equal("FT4046", e.Code);
        Assert.Contains("'bert'", e.Message);
    }
}
