using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests;

public class ModelConfigTests
{
    private const string Llama32 = """
        {"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":128256,"hidden_size":2048,
         "intermediate_size":8192,"num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,
         "head_dim":64,"rms_norm_eps":1e-05,"rope_theta":500000.0,"tie_word_embeddings":true,"attention_bias":false,
         "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},
         "bos_token_id":128000,"eos_token_id":[128001,128008,128009]}
        """;

    [Fact]
    public void Reads_a_llama_3_2_config()
    {
        var c = ModelConfig.Parse(Llama32, "config.json");
        Assert.Equal((2048, 16, 32, 8, 64), (c.HiddenSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim));
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(32, c.RopeScaling!.Factor);
        Assert.Equal(128001, c.EosTokenId);
        Assert.False(c.AttentionBias);
    }

    [Fact]
    public void Qwen2_has_qkv_bias_and_qwen3_has_qk_norm()
    {
        var qwen2 = ModelConfig.Parse("""{"model_type":"qwen2","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1}""", "c");
        Assert.True(qwen2.AttentionBias);
        Assert.False(qwen2.OutputBias);
        Assert.Equal(4, qwen2.HeadDim);
        var qwen3 = ModelConfig.Parse("""{"model_type":"qwen3","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":6}""", "c");
        Assert.True(qwen3.QkNorm);
        Assert.False(qwen3.AttentionBias);
        Assert.Equal(6, qwen3.HeadDim);
    }

    [Fact]
    public void Unsupported_architectures_and_bad_values_are_errors()
    {
        var e = Assert.Throws<FineTuneException>(() => ModelConfig.Parse("""{"model_type":"gpt2"}""", "config.json"));
        Assert.Equal("FT3015", e.Code);
        Assert.Contains("gpt2", e.Message);
        Assert.Equal("FT3014", Assert.Throws<FineTuneException>(() => ModelConfig.Parse("""{"model_type":"llama","vocab_size":"x"}""", "c")).Code);
        Assert.Equal("FT3014", Assert.Throws<FineTuneException>(() => ModelConfig.Parse("not json", "c")).Code);
        Assert.Equal("FT3016", Assert.Throws<FineTuneException>(() => ModelConfig.Parse(
            """{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"type":"yarn"}}""", "c")).Code);
    }

    [Fact]
    public void Written_config_reads_back_equal()
    {
        var c = ModelConfig.Parse(Llama32, "config.json");
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "again"));
    }
}
