using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;
using FineTune.Gguf.Export;
using FineTune.Gguf.Quantization;

namespace FineTune.Gguf.Tests;

/// <summary>Gemma 3 settings llama.cpp's gemma3 graph cannot be told are refused before anything is written.</summary>
public sealed class GemmaExportTests
{
    [Theory]
    [InlineData(26, 1152, 4, 256, 200.0)]  // a fine-tune that changed query_pre_attn_scalar
    [InlineData(62, 5376, 32, 128, 128.0)] // 27B: llama.cpp scales by hidden/heads = 168, as the release's query_pre_attn_scalar says; 128 would differ
    public void A_query_pre_attn_scalar_llama_cpp_would_not_use_is_FT4030(int layers, int hidden, int heads, int headDim, double scalar)
    {
        using var dir = new TempDir();
        var model = dir.File("model");
        Directory.CreateDirectory(model);
        var config = new ModelConfig
        {
            ModelType = "gemma3_text", VocabSize = 262208, HiddenSize = hidden, IntermediateSize = 4 * hidden, NumLayers = layers,
            NumHeads = heads, NumKvHeads = heads / 2, HeadDim = headDim, QkNorm = true, TieWordEmbeddings = true, EmbeddingScale = MathF.Sqrt(hidden),
            NormWeightOffset = true, SandwichNorms = true, Activation = GateActivation.GeluTanh, QueryPreAttnScalar = scalar,
            SlidingWindow = 1024, SlidingLayers = Enumerable.Range(0, layers).Select(l => (l + 1) % 6 != 0).ToArray(), RopeLocalTheta = 10_000,
        };
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJson());
        var output = dir.File("out.gguf");
        var e = Assert.Throws<FineTuneException>(() => GgufExporter.Export(new ExportOptions { BaseModel = model, Type = FileType.F16, Name = "g", Version = "1", Output = output }));
        Assert.Equal("FT4030", e.Code);
        Assert.Contains("query_pre_attn_scalar", e.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void The_27b_release_scale_is_what_llama_cpp_uses()
    {
        // google/gemma-3-27b: hidden 5376, 32 heads, head_dim 128, query_pre_attn_scalar 168 = 5376 / 32.
        using var dir = new TempDir();
        var model = dir.File("model");
        Directory.CreateDirectory(model);
        File.WriteAllText(Path.Combine(model, "config.json"), """
            {"model_type":"gemma3_text","hidden_size":5376,"intermediate_size":21504,"num_hidden_layers":62,"num_attention_heads":32,
             "num_key_value_heads":16,"head_dim":128,"query_pre_attn_scalar":168,"sliding_window":1024}
            """);
        GemmaGguf.CheckRepresentable(ModelConfig.Load(model), model);
    }
}
