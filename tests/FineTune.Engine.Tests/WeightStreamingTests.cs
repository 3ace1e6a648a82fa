using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests;

/// <summary>
/// The host side of streaming weights to the GPU: per-tensor bf16 conversion (bit patterns worked
/// out by hand from the IEEE layouts, round to nearest even as torch's <c>.to(torch.bfloat16)</c>),
/// reading a tensor as bf16 from a file, and the tensors a model is streamed from, by name and order.
/// </summary>
public class WeightStreamingTests
{
    [Theory]
    [InlineData(0x3F800000u, 0x3F80)] // 1
    [InlineData(0xBFC00000u, 0xBFC0)] // -1.5
    [InlineData(0x3F807FFFu, 0x3F80)] // just below half an ulp: down
    [InlineData(0x3F808000u, 0x3F80)] // exactly half, 0x3F80 even: down
    [InlineData(0x3F808001u, 0x3F81)] // just above half: up
    [InlineData(0x3F818000u, 0x3F82)] // exactly half, 0x3F81 odd: up to the even 0x3F82
    [InlineData(0xBF818000u, 0xBF82)] // the same tie, negative
    [InlineData(0x3FFF8000u, 0x4000)] // a tie that carries into the exponent: 1.99609375 -> 2
    [InlineData(0x7F7FFFFFu, 0x7F80)] // float.MaxValue rounds past bf16's largest finite value to +inf
    [InlineData(0x7F800000u, 0x7F80)] // +inf
    [InlineData(0xFF800000u, 0xFF80)] // -inf
    [InlineData(0x7FC00000u, 0x7FC0)] // quiet NaN
    [InlineData(0x7F800001u, 0x7FC0)] // NaN whose payload is below bf16's bits: stays a (quiet) NaN, not +inf
    [InlineData(0xFFA00000u, 0xFFE0)] // signalling NaN keeps its sign and payload, quietened
    [InlineData(0x00000001u, 0x0000)] // smallest subnormal: far below half of bf16's ulp there
    [InlineData(0x00008000u, 0x0000)] // subnormal tie, even 0: down
    [InlineData(0x00018000u, 0x0002)] // subnormal tie, odd 1: up
    [InlineData(0x80000000u, 0x8000)] // -0
    public void F32_rounds_to_the_nearest_even_bfloat16(uint f32, int bf16)
    {
        var result = new ushort[1];
        TensorDTypes.ToBF16(TensorDType.F32, BitConverter.GetBytes(f32), result);
        Assert.Equal($"0x{bf16:X4}", $"0x{result[0]:X4}");
    }

    [Theory]
    [InlineData(0x3C00, 0x3F80)] // 1
    [InlineData(0x3C01, 0x3F80)] // 1 + 2^-10: below half of bf16's ulp 2^-7
    [InlineData(0x3C04, 0x3F80)] // 1 + 2^-8: tie, even 1.0
    [InlineData(0x3C0C, 0x3F82)] // 1 + 3·2^-8: tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even)
    [InlineData(0x3C05, 0x3F81)] // 1 + 5·2^-10: above half
    [InlineData(0xC000, 0xC000)] // -2
    [InlineData(0x7BFF, 0x4780)] // 65504 = (2 - 2^-10)·2^15 rounds up to 2^16
    [InlineData(0x0001, 0x3380)] // smallest F16 subnormal 2^-24, normal (and exact) in bf16
    [InlineData(0x0200, 0x3800)] // subnormal 2^-15
    [InlineData(0x03FF, 0x3880)] // largest subnormal 1023·2^-24 = 1.111111111b·2^-15 rounds up to 2^-14
    [InlineData(0x8001, 0xB380)] // -2^-24
    [InlineData(0x7C00, 0x7F80)] // +inf
    [InlineData(0xFC00, 0xFF80)] // -inf
    [InlineData(0x7E00, 0x7FC0)] // NaN
    public void F16_widens_exactly_then_rounds_to_the_nearest_even_bfloat16(int f16, int bf16)
    {
        var result = new ushort[1];
        TensorDTypes.ToBF16(TensorDType.F16, BitConverter.GetBytes((ushort)f16), result);
        Assert.Equal($"0x{bf16:X4}", $"0x{result[0]:X4}");
    }

    [Fact]
    public void Bf16_is_taken_as_stored()
    {
        ushort[] stored = [0x3F80, 0x0001, 0xFF81, 0x7F80, 0x8000];
        var result = new ushort[stored.Length];
        TensorDTypes.ToBF16(TensorDType.BF16, System.Runtime.InteropServices.MemoryMarshal.AsBytes(stored.AsSpan()), result);
        Assert.Equal(stored, result);
    }

    /// <summary>
    /// Reading crosses the 2^20-element chunks of F32/F16 conversion: small integers are exact in
    /// every dtype (expected bits: the float's top half), and one value past the first chunk needs rounding.
    /// </summary>
    [Theory]
    [InlineData(TensorDType.F32, 0x3F81)] // 1 + 2^-8 + 2^-20: above half, up
    [InlineData(TensorDType.F16, 0x3F82)] // 1 + 3·2^-8 (2^-20 is below F16's precision): tie to even
    [InlineData(TensorDType.BF16, 0x3F80)] // rounded once already when written: 1 + 2^-8 is a tie to 1
    public void A_tensor_reads_as_bfloat16_across_chunks(TensorDType dtype, int roundedBits)
    {
        using var dir = new TempDir();
        const int n = (1 << 20) + 5;
        var values = Enumerable.Range(0, n).Select(i => (float)(i % 256 - 128)).ToArray();
        const int rounded = (1 << 20) + 2;
        values[rounded] = dtype == TensorDType.F16 ? 1 + 3f / 256 : 1 + 1f / 256 + 1f / (1 << 20);
        if (dtype == TensorDType.BF16) values[rounded] = 1 + 1f / 256;
        SafetensorsWriter.Write(dir["m.safetensors"], [new("a", [2], [5f, 6f], dtype), new("big", [n], values, dtype)]);
        using var f = SafetensorsFile.Open(dir["m.safetensors"]);
        var result = new ushort[n];
        f.ReadBF16(f.Info("big"), result);
        for (var i = 0; i < n; i++)
        {
            var expected = i == rounded ? roundedBits : BitConverter.SingleToInt32Bits(i % 256 - 128) >>> 16;
            if (result[i] != expected) Assert.Fail($"element {i}: 0x{result[i]:X4}, expected 0x{expected:X4}");
        }
        var a = new ushort[2];
        f.ReadBF16(f.Info("a"), a);
        Assert.Equal(new ushort[] { 0x40A0, 0x40C0 }, a); // 5, 6
        Assert.Throws<ArgumentException>(() => f.ReadBF16(f.Info("a"), new ushort[3]));
    }

    [Fact]
    public void A_generated_model_streams_every_stored_tensor_once_in_load_order()
    {
        using var dir = new TempDir();
        var tok = TestModels.WriteTokenizer(dir["tok"], 40);
        var config = TinyModelFactory.Create(tok, dir["m"], new TinyModelShape(Layers: 2, Hidden: 16, Heads: 4, KvHeads: 2, Intermediate: 24));
        var layout = LlamaTensorLayout.For(config);
        string[] Layer(int l) =>
        [
            $"model.layers.{l}.self_attn.q_proj.weight", $"model.layers.{l}.self_attn.k_proj.weight", $"model.layers.{l}.self_attn.v_proj.weight",
            $"model.layers.{l}.self_attn.o_proj.weight", $"model.layers.{l}.mlp.gate_proj.weight", $"model.layers.{l}.mlp.up_proj.weight",
            $"model.layers.{l}.mlp.down_proj.weight", $"model.layers.{l}.input_layernorm.weight", $"model.layers.{l}.post_attention_layernorm.weight",
        ];
        string[] expected = [.. Layer(0), .. Layer(1), "model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"];
        Assert.Equal(expected, layout.Select(t => t.Name));
        // q [heads·head_dim = 16, hidden], k/v [kv_heads·head_dim = 8, hidden], gate/up [24, 16], down [16, 24].
        Assert.Equal(new long[] { 8, 16 }, layout[1].Shape);
        Assert.Equal(new long[] { 16, 24 }, layout[6].Shape);
        Assert.Equal(new long[] { 40, 16 }, layout[^2].Shape);
        using var files = ModelWeights.Open(dir["m"]);
        Assert.Equal(files.Names.Order(StringComparer.Ordinal), layout.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (var t in layout) Assert.Equal(t.Shape, files.Shape(t.Name));
        // The float32 path reads the same tensors into the same places.
        var weights = LlamaWeights.Load(config, files);
        Assert.Equal(files.ReadF32("model.layers.1.mlp.up_proj.weight"), weights.Layers[1].Linear[(int)Projection.Up]);
        Assert.Equal(layout.Where(t => t.Kind == LlamaTensorKind.Linear && t.Layer == 1 && t.Projection == Projection.Up).Select(t => t.Name),
            ["model.layers.1.mlp.up_proj.weight"]);
    }

    [Fact]
    public void Qwen3_with_biases_and_a_tied_head_adds_biases_and_qk_norms_and_skips_the_head()
    {
        var config = TestModels.Config("qwen3", bias: true, tie: true, layers: 1) with { QkNorm = true };
        Assert.Equal(
        [
            "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias",
            "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.k_proj.bias",
            "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.v_proj.bias",
            "model.layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.o_proj.bias",
            "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
            "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
            "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
            "model.embed_tokens.weight", "model.norm.weight",
        ], LlamaTensorLayout.For(config).Select(t => t.Name));
        Assert.Equal(new long[] { config.HeadDim }, LlamaTensorLayout.For(config).Single(t => t.Kind == LlamaTensorKind.KNorm).Shape);
    }

    [Fact]
    public void Opening_a_base_model_checks_every_shape_before_reading_data()
    {
        using var dir = new TempDir();
        var config = TestModels.Config(layers: 1);
        TestModels.WriteModel(dir["m"], config);
        File.WriteAllText(Path.Combine(dir["m"], "config.json"), (config with { IntermediateSize = config.IntermediateSize + 8 }).ToJson());
        var e = Assert.Throws<FineTuneException>(() => BaseModel.Open(dir["m"]));
        Assert.Equal("FT3017", e.Code);
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", e.Message);
    }
}
