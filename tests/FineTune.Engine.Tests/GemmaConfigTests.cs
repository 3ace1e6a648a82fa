using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests;

/// <summary>Gemma 3 configs as the released checkpoints ship them (google/gemma-3-1b-it, gemma-3-4b-it).</summary>
public class GemmaConfigTests
{
    private const string Gemma3_1B = """
        {"architectures":["Gemma3ForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"attn_logit_softcapping":null,
         "bos_token_id":2,"cache_implementation":"hybrid","eos_token_id":[1,106],"final_logit_softcapping":null,"head_dim":256,
         "hidden_activation":"gelu_pytorch_tanh","hidden_size":1152,"initializer_range":0.02,"intermediate_size":6912,
         "max_position_embeddings":32768,"model_type":"gemma3_text","num_attention_heads":4,"num_hidden_layers":26,
         "num_key_value_heads":1,"pad_token_id":0,"query_pre_attn_scalar":256,"rms_norm_eps":1e-06,"rope_local_base_freq":10000,
         "rope_scaling":null,"rope_theta":1000000,"sliding_window":512,"sliding_window_pattern":6,"torch_dtype":"bfloat16",
         "transformers_version":"4.50.0.dev0","use_cache":true,"vocab_size":262144}
        """;

    // The multimodal 4B: the language model's settings are in text_config, defaults fill the rest.
    private const string Gemma3_4B = """
        {"architectures":["Gemma3ForConditionalGeneration"],"model_type":"gemma3","boi_token_index":255999,"eoi_token_index":256000,
         "eos_token_id":[1,106],"image_token_index":262144,"mm_tokens_per_image":256,
         "text_config":{"hidden_size":2560,"intermediate_size":10240,"model_type":"gemma3_text","num_hidden_layers":34,
           "rope_scaling":{"factor":8.0,"rope_type":"linear"},"sliding_window":1024},
         "vision_config":{"hidden_size":1152,"model_type":"siglip_vision_model"}}
        """;

    [Fact]
    public void Reads_gemma_3_1b_with_every_sixth_layer_global()
    {
        var c = ModelConfig.Parse(Gemma3_1B, "config.json");
        Assert.Equal("gemma3_text", c.ModelType);
        Assert.Equal((1152, 26, 4, 1, 256, 6912), (c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim, c.IntermediateSize));
        Assert.True(c.TieWordEmbeddings && c.QkNorm && c.SandwichNorms && c.NormWeightOffset);
        Assert.Equal(GateActivation.GeluTanh, c.Activation);
        Assert.Equal(new[] { 5, 11, 17, 23 }, Enumerable.Range(0, 26).Where(l => !c.IsSlidingLayer(l)));
        Assert.Equal(512, c.SlidingWindow);
        Assert.Equal((1_000_000d, 10_000d), (c.RopeTheta, c.RopeLocalTheta!.Value));
        Assert.Equal(MathF.Sqrt(1152), c.EmbeddingScale);
        Assert.Equal(1f / 16, c.AttentionScale);
        Assert.Equal(1, c.EosTokenId);
        // The local layers' RoPE base is their own; the global ones use rope_theta.
        var ropes = RopeTable.PerLayer(c);
        Assert.Equal(1f / MathF.Pow(10_000, 2f / 256), ropes[0].InverseFrequencies[1], 6);
        Assert.Equal(1f / MathF.Pow(1_000_000, 2f / 256), ropes[5].InverseFrequencies[1], 6);
    }

    [Fact]
    public void Reads_gemma_3_4b_text_config_with_linear_rope_scaling_on_global_layers_only()
    {
        var c = ModelConfig.Parse(Gemma3_4B, "config.json");
        Assert.Equal("gemma3_text", c.ModelType);
        Assert.Equal((2560, 34, 8, 4, 256), (c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim));
        Assert.Equal(262208, c.VocabSize); // Gemma3TextConfig's default
        Assert.Equal(8, c.LinearRopeFactor);
        Assert.Equal(1024, c.SlidingWindow);
        var ropes = RopeTable.PerLayer(c);
        Assert.Equal(1f / 8, ropes[5].InverseFrequencies[0], 6);   // global: 1 / 8
        Assert.Equal(1f, ropes[0].InverseFrequencies[0], 6);       // local: unscaled
    }

    [Fact]
    public void Layer_types_override_the_pattern_and_round_trip()
    {
        var json = Gemma3_1B.Replace("\"num_hidden_layers\":26", "\"num_hidden_layers\":3,\"layer_types\":[\"full_attention\",\"sliding_attention\",\"full_attention\"]");
        var c = ModelConfig.Parse(json, "config.json");
        Assert.Equal(new[] { false, true, false }, c.SlidingLayers);
        var again = ModelConfig.Parse(c.ToJson(), "again.json");
        Assert.Equal(c.SlidingLayers, again.SlidingLayers);
        Assert.Equal((c.SlidingWindow, c.RopeLocalTheta, c.QueryPreAttnScalar, c.EmbeddingScale), (again.SlidingWindow, again.RopeLocalTheta, again.QueryPreAttnScalar, again.EmbeddingScale));
    }

    [Theory]
    [InlineData("\"final_logit_softcapping\":null", "\"final_logit_softcapping\":30.0", "FT3090")]
    [InlineData("\"attn_logit_softcapping\":null", "\"attn_logit_softcapping\":50.0", "FT3090")]
    [InlineData("\"hidden_activation\":\"gelu_pytorch_tanh\"", "\"hidden_activation\":\"silu\"", "FT3091")]
    public void Settings_the_engine_does_not_implement_are_refused(string from, string to, string code)
    {
        var e = Assert.Throws<FineTuneException>(() => ModelConfig.Parse(Gemma3_1B.Replace(from, to), "config.json"));
        Assert.Equal(code, e.Code);
    }
}
