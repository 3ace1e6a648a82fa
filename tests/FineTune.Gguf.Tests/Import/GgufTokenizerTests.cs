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

    [Fact]
    public void A_sentencepiece_gguf_is_refused_with_FT4046()
    {
        using var dir = new TempDir();
        var (shape, package) = ArchitecturesVsLlamaCppTests.Case("mistral");
        var modelDir = dir.File("model");
        RandomHfModel.Write(modelDir, ArchitecturesVsLlamaCppTests.TokenizerDir(package), shape with { NumLayers = 1 }, seed: 3);
        var path = dir.File("m.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.Q8_0, Name = "m", Version = "1.0.0", Output = path });
        Assert.Equal("FT4046", Assert.Throws<FineTuneException>(() => GgufTokenizer.Load(GgufReader.Read(path))).Code);
    }
}
