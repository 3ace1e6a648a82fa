using FineTune.Engine.Model;
using FineTune.Gguf.Export;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;

namespace FineTune.Gguf.Tests;

/// <summary>
/// Every quantization type of a Gemma 3 export against llama.cpp's llama_model_quantize on our F32
/// export of the same model (Q4_K_M is checked in <see cref="ArchitecturesVsLlamaCppTests"/>): each
/// tensor of the gemma3 layout — the sandwich norms, q/k norms, the tied 262,208-row embedding that
/// doubles as the output — gets llama.cpp's type and llama.cpp's bytes.
/// </summary>
public sealed class GemmaQuantizeVsLlamaCppTests
{
    public static TheoryData<FileType> Types => [FileType.Q8_0, FileType.Q4_0, FileType.Q5_K_M, FileType.Q6_K, FileType.F16, FileType.BF16];

    // Gemma 3's traits at a size the 2-core machine quantizes in seconds: rows of 64 and 96, so the
    // K-quant types take llama.cpp's fallbacks for rows that are not multiples of 256.
    private static ModelConfig Shape => new()
    {
        ModelType = "gemma3_text", VocabSize = 262208, HiddenSize = 64, IntermediateSize = 96, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
        HeadDim = 32, RmsNormEps = 1e-6, RopeTheta = 1_000_000, RopeLocalTheta = 10_000, MaxPositionEmbeddings = 4096, TieWordEmbeddings = true,
        QkNorm = true, EmbeddingScale = 8, NormWeightOffset = true, SandwichNorms = true, Activation = GateActivation.GeluTanh,
        QueryPreAttnScalar = 32, SlidingWindow = 4, SlidingLayers = [true, false],
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void Gemma3_export_matches_llama_model_quantize(FileType type)
    {
        LlamaNative.EnsureLoaded();
        using var dir = new TempDir();
        var modelDir = dir.File("model");
        RandomHfModel.Write(modelDir, TokenizerDir(), Shape, seed: 5);
        var f32 = dir.File("gemma3-F32.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = FileType.F32, Name = "gemma3", Version = "1.0.0", Output = f32 });
        var theirs = dir.File($"gemma3-{type}-llama.cpp.gguf");
        LlamaCppOracle.Quantize(f32, theirs, type);
        var ours = dir.File($"gemma3-{type}.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = modelDir, Type = type, Name = "gemma3", Version = "1.0.0", Output = ours });

        var reference = GgufReader.Read(theirs);
        var mine = GgufReader.Read(ours);
        Assert.Equal((ulong)type, mine.Get("general.file_type")!.AsUInt64());
        Assert.Equal(reference.Tensors.Select(t => t.Name).Order(), mine.Tensors.Select(t => t.Name).Order());
        foreach (var r in reference.Tensors)
        {
            var m = mine.Tensor(r.Name)!;
            Assert.True(r.Type == m.Type, $"{r.Name}: llama.cpp chose {r.Type}, we chose {m.Type}");
            Assert.True(reference.ReadTensorBytes(r).AsSpan().SequenceEqual(mine.ReadTensorBytes(m)), $"{r.Name} ({r.Type}): bytes differ from llama.cpp's");
        }
    }

    private static string TokenizerDir() =>
        Path.Combine(Path.GetDirectoryName(LlamaNative.LibraryDirectory)!, "..", "..", "..", "@lenml", "tokenizer-gemma3", "models");
}
