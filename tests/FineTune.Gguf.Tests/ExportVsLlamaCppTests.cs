using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Gguf.Export;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;
using FineTune.Tokenizers;
using Xunit.Abstractions;

namespace FineTune.Gguf.Tests;

/// <summary>
/// Oracle: llama.cpp loads each exported file type of a generated tiny model, and its logits for a
/// fixed prompt match our engine's forward pass on the Hugging Face weights; its tokenizer gives
/// our tokenizer's ids.
/// </summary>
public sealed class ExportVsLlamaCppTests : IClassFixture<ExportVsLlamaCppTests.TinyModel>
{
    public sealed class TinyModel : IDisposable
    {
        public TempDir Dir { get; } = new();
        public string ModelDir => Dir.File("model");
        public string TokenizerDir { get; }

        public TinyModel()
        {
            TokenizerDir = Path.Combine(Path.GetDirectoryName(LlamaNative.LibraryDirectory)!, "..", "..", "..", "@lenml", "tokenizer-llama3", "models");
            TinyModelFactory.Create(TokenizerDir, ModelDir, new TinyModelShape(Layers: 2, Hidden: 64, Heads: 4, KvHeads: 2, Intermediate: 128, Seed: 3));
        }

        public void Dispose() => Dir.Dispose();
    }

    private readonly TinyModel _model;
    private readonly ITestOutputHelper _output;

    public ExportVsLlamaCppTests(TinyModel model, ITestOutputHelper output)
    {
        _model = model;
        _output = output;
    }

    private const string Prompt = "The quick brown fox jumps over the lazy dog, 12345 times!";

    // Tolerances on the largest absolute logit difference (logits of this model are O(1)); hidden 64
    // means K-quant tensors fall back to Q5_0/Q5_1/Q8_0 exactly as llama.cpp does.
    [Theory]
    [InlineData(FileType.F32, 1e-5)]
    [InlineData(FileType.F16, 1e-3)]
    [InlineData(FileType.BF16, 2e-2)]
    [InlineData(FileType.Q8_0, 2e-2)]
    [InlineData(FileType.Q6_K, 4e-2)]
    [InlineData(FileType.Q5_K_M, 1e-1)]
    [InlineData(FileType.Q4_K_M, 1.2e-1)]
    [InlineData(FileType.Q4_0, 1.5e-1)]
    public void Llama_cpp_logits_match_the_engine(FileType type, double tolerance)
    {
        LlamaNative.EnsureLoaded();
        var path = _model.Dir.File($"tiny-{type}.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = _model.ModelDir, Type = type, Name = "tiny", Version = "1.0.0", Output = path, ChatTemplate = "{{ messages }}" });

        var tokenizer = Tokenizer.Load(_model.ModelDir);
        var ids = tokenizer.Encode(Prompt).Ids;
        var expected = LlamaModel.Load(_model.ModelDir).Logits(ids);
        var actual = LlamaCppOracle.Logits(path, ids, out var vocab);
        Assert.Equal(expected.Length, actual.Length);
        var maxDiff = 0.0;
        for (var i = 0; i < expected.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(expected[i] - actual[i]));
        _output.WriteLine($"{type}: max |logit difference| = {maxDiff:G4}");
        Assert.True(maxDiff <= tolerance, $"{type}: max |logit difference| {maxDiff:G4} exceeds {tolerance} over {ids.Length} positions × {vocab}");
        var header = GgufReader.Read(path);
        Assert.Equal("1.0.0", header.Get("general.version")!.Value);
        Assert.Equal("llama-bpe", header.Get("tokenizer.ggml.pre")!.Value);
    }

    [Fact]
    public void Merged_lora_export_matches_the_engine_with_the_adapter_and_the_adapter_gguf_loads()
    {
        LlamaNative.EnsureLoaded();
        var config = ModelConfig.Load(_model.ModelDir);
        var adapter = new LoraAdapter(config, new LoraSettings(4, 8, 0, false, Projections.All.ToList()));
        var rng = new Random(5);
        foreach (var t in adapter.Tensors)
            for (var i = 0; i < t.Value.Length; i++) t.Value[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
        var adapterDir = _model.Dir.File("adapter");
        adapter.Save(adapterDir, _model.ModelDir);

        var path = _model.Dir.File("merged.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = _model.ModelDir, Adapter = adapterDir, Type = FileType.F32, Name = "tiny", Version = "1", Output = path });
        var ids = Tokenizer.Load(_model.ModelDir).Encode(Prompt).Ids;
        var expected = LlamaModel.Load(_model.ModelDir, adapterDir).Logits(ids);
        var baseLogits = LlamaModel.Load(_model.ModelDir).Logits(ids);
        var actual = LlamaCppOracle.Logits(path, ids, out _);
        var maxDiff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        var adapterEffect = expected.Zip(baseLogits, (e, b) => Math.Abs(e - b)).Max();
        _output.WriteLine($"merged F32: max |logit difference| = {maxDiff:G4}; the adapter moves logits by up to {adapterEffect:G4}");
        Assert.True(adapterEffect > 0.05, "the test adapter must change the model noticeably");
        Assert.True(maxDiff <= 1e-5, $"merged model: max |logit difference| {maxDiff:G4}");

        var adapterPath = _model.Dir.File("adapter.gguf");
        Assert.Equal(2 * 7 * config.NumLayers, LoraAdapterExporter.Export(_model.ModelDir, adapterDir, "tiny", "1", adapterPath));
        var header = GgufReader.Read(adapterPath);
        Assert.Equal("adapter", header.Get("general.type")!.Value);
        Assert.Equal(8f, header.Get("adapter.lora.alpha")!.Value);
        Assert.Equal(new long[] { 64, 4 }, header.Tensor("blk.0.attn_q.weight.lora_a")!.Shape);
        var basePath = _model.Dir.File("base.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = _model.ModelDir, Type = FileType.F16, Name = "tiny", Version = "1", Output = basePath });
        var model = LlamaNative.llama_model_load_from_file(basePath, LlamaNative.llama_model_default_params());
        try
        {
            var lora = LlamaNative.llama_adapter_lora_init(model, adapterPath);
            Assert.NotEqual(IntPtr.Zero, lora);
            LlamaNative.llama_adapter_lora_free(lora);
        }
        finally
        {
            LlamaNative.llama_model_free(model);
        }
    }

    [Fact]
    public void Llama_cpp_tokenizes_like_our_tokenizer()
    {
        LlamaNative.EnsureLoaded();
        var path = _model.Dir.File("tok.gguf");
        GgufExporter.Export(new ExportOptions { BaseModel = _model.ModelDir, Type = FileType.F16, Name = "tiny", Version = "1", Output = path });
        var tokenizer = Tokenizer.Load(_model.ModelDir);
        foreach (var text in new[] { Prompt, "Héllo wörld — ünïcode ✓ 你好", "  leading spaces\n\nand\ttabs", "don't I'll we've 3.14159" })
            Assert.Equal(tokenizer.Encode(text).Ids, LlamaCppOracle.Tokenize(path, text, parseSpecial: false));
    }
}
