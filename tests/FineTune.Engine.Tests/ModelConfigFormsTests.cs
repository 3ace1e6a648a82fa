using System.Text.Json.Nodes;
using FineTune.Core.Config;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Model;
using FineTune.Engine.Training;

namespace FineTune.Engine.Tests;

/// <summary>
/// Real models' config.json as transformers 4 and 5 write them (Fixtures/configs, sources in its
/// SOURCES.md) read to the same model; values that change the math and are not implemented are errors.
/// </summary>
public class ModelConfigFormsTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "configs", name);

    private static ModelConfig Read(string name) => ModelConfig.Parse(File.ReadAllText(Fixture(name)), name);

    [Theory]
    [InlineData("llama-3.2-1b-instruct")]
    [InlineData("qwen2.5-0.5b-instruct")]
    [InlineData("qwen3-0.6b")]
    [InlineData("mistral-7b-instruct-v0.3")]
    public void Transformers_4_and_5_forms_of_a_real_config_read_the_same(string model) =>
        Assert.Equal(Read(model + ".v4.json"), Read(model + ".v5.json"));

    [Fact]
    public void The_published_rope_and_dtype_values_are_read_from_either_form()
    {
        foreach (var form in new[] { "v4", "v5" })
        {
            var llama = Read($"llama-3.2-1b-instruct.{form}.json");
            Assert.Equal(500000, llama.RopeTheta);
            Assert.Equal(new Llama3RopeScaling(32, 1, 4, 8192), llama.RopeScaling);
            Assert.Equal("bfloat16", llama.DType);
            var qwen3 = Read($"qwen3-0.6b.{form}.json");
            Assert.Equal((1000000.0, (Llama3RopeScaling?)null, 128), (qwen3.RopeTheta, qwen3.RopeScaling, qwen3.HeadDim));
            Assert.Equal(1000000, Read($"qwen2.5-0.5b-instruct.{form}.json").RopeTheta);
            Assert.Equal(1000000, Read($"mistral-7b-instruct-v0.3.{form}.json").RopeTheta);
        }
    }

    [Fact]
    public void A_language_model_nested_in_text_config_reads_like_the_flat_one()
    {
        var flat = JsonNode.Parse(File.ReadAllText(Fixture("mistral-7b-instruct-v0.3.v5.json")))!.AsObject();
        var wrapped = new JsonObject
        {
            ["architectures"] = new JsonArray("Mistral3ForConditionalGeneration"),
            ["model_type"] = "mistral3",
            ["dtype"] = "bfloat16",
            ["text_config"] = flat.DeepClone(),
            ["vision_config"] = new JsonObject { ["model_type"] = "pixtral", ["hidden_size"] = 1024 },
        };
        ((JsonObject)wrapped["text_config"]!).Remove("dtype");
        Assert.Equal(Read("mistral-7b-instruct-v0.3.v4.json"), ModelConfig.Parse(wrapped.ToJsonString(), "config.json"));
    }

    public static TheoryData<string, string, string> Refused => new()
    {
        // key to set (JSON merged into Llama 3.2's v5 config), expected code, text the message must contain
        { """{"rope_parameters":{"rope_type":"yarn","rope_theta":500000.0,"factor":4.0}}""", "FT3016", "'rope_parameters.rope_type' = \"yarn\"" },
        { """{"rope_parameters":null,"rope_theta":500000.0,"rope_scaling":{"type":"dynamic","factor":2.0}}""", "FT3016", "'rope_scaling.type' = \"dynamic\"" },
        { """{"rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":32.0}}""", "FT3014", "no 'low_freq_factor'" },
        { """{"rope_theta":10000.0}""", "FT3041", "'rope_parameters.rope_theta' = 500000 and 'rope_theta' = 10000" },
        { """{"torch_dtype":"float16"}""", "FT3041", "'dtype' = bfloat16 and 'torch_dtype' = float16" },
        { """{"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1000000.0},"sliding_attention":{"rope_type":"default","rope_theta":10000.0}}}""", "FT3040", "full_attention, sliding_attention" },
        { """{"model_type":"mistral","sliding_window":4096}""", "FT3040", "'sliding_window' = 4096" },
        { """{"model_type":"qwen2","use_sliding_window":true,"sliding_window":4096}""", "FT3040", "'use_sliding_window' = true" },
        { """{"final_logit_softcapping":30.0}""", "FT3040", "'final_logit_softcapping' = 30" },
        { """{"attn_logit_softcapping":50.0}""", "FT3040", "'attn_logit_softcapping' = 50" },
        { """{"hidden_act":"gelu_pytorch_tanh"}""", "FT3040", "'hidden_act' = \"gelu_pytorch_tanh\"" },
        { """{"mlp_bias":true}""", "FT3040", "'mlp_bias' = true" },
        { """{"partial_rotary_factor":0.5}""", "FT3040", "'partial_rotary_factor' = 0.5" },
        { """{"attention_dropout":0.1}""", "FT3040", "'attention_dropout' = 0.1" },
        { """{"quantization_config":{"quant_method":"awq","bits":4}}""", "FT3040", "'quantization_config' = \"awq\"" },
        { """{"layer_types":["full_attention","sliding_attention"]}""", "FT3040", "'layer_types'" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_value_that_changes_the_math_and_is_not_implemented_is_an_error_naming_the_key(string patch, string code, string message)
    {
        var config = JsonNode.Parse(File.ReadAllText(Fixture("llama-3.2-1b-instruct.v5.json")))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject())
            config[key] = value?.DeepClone();
        var e = Assert.Throws<FineTuneException>(() => ModelConfig.Parse(config.ToJsonString(), "config.json"));
        Assert.Equal(code, e.Code);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_tiny_model_written_in_either_form_trains_to_byte_identical_adapters()
    {
        using var dir = new TempDir();
        var config = TestModels.Config() with { RopeTheta = 500000, RopeScaling = new Llama3RopeScaling(8, 1, 4, 16), DType = "float32" };
        TestModels.WriteModel(dir["v4"], config, std: 0.1);
        var v5 = JsonNode.Parse(File.ReadAllText(dir["v4/config.json"]))!.AsObject();
        var rope = (JsonObject)v5["rope_scaling"]!.DeepClone();
        rope["rope_theta"] = v5["rope_theta"]!.DeepClone();
        v5.Remove("rope_scaling");
        v5.Remove("rope_theta");
        v5["rope_parameters"] = rope;
        v5["dtype"] = v5["torch_dtype"]!.DeepClone();
        v5.Remove("torch_dtype");
        Directory.CreateDirectory(dir["v5"]);
        File.WriteAllText(dir["v5/config.json"], v5.ToJsonString());
        File.Copy(dir["v4/model.safetensors"], dir["v5/model.safetensors"]);
        Assert.Equal(config, ModelConfig.Load(dir["v5"]));

        byte[] Train(string model)
        {
            var options = new TrainerOptions
            {
                BaseModelDirectory = dir[model],
                Config = new TrainingConfig { R = 4, LoraAlpha = 8, LearningRate = 1e-2, MaxSteps = 3, PerDeviceTrainBatchSize = 2, MaxSeqLength = 32 },
                Train = Enumerable.Range(0, 6).Select(i => new FineTune.Core.Datasets.TokenizedExample([1 + i, 2, 3, 4, 5 + i, 6], [false, false, false, true, true, true])).ToList(),
                Validation = [],
                OutDirectory = dir[model + "-out"],
                CheckpointDirectory = dir[model + "-ck"],
                Backend = new CpuBackend(1),
            };
            new Trainer(options).Run(null, CancellationToken.None);
            return File.ReadAllBytes(dir[model + "-out/adapter_model.safetensors"]);
        }
        Assert.Equal(Train("v4"), Train("v5"));
    }
}
