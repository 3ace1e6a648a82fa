using FineTune.Core.Config;
using FineTune.Core.Diagnostics;

namespace FineTune.Core.Tests;

public sealed class TrainingConfigLoaderTests
{
    [Fact]
    public void Reads_peft_and_trl_keys()
    {
        var config = TrainingConfigLoader.Parse("""
            r: 8
            lora_alpha: 32
            target_modules: [q_proj, v_proj]
            learning_rate: 1.5e-4
            lr_scheduler_type: cosine
            per_device_train_batch_size: 4
            use_rslora: true
            max_steps: 0
            num_train_epochs: 2
            """, "lora.yaml");
        Assert.Equal(8, config.R);
        Assert.Equal(32, config.LoraAlpha);
        Assert.Equal(["q_proj", "v_proj"], config.TargetModules);
        Assert.Equal(1.5e-4, config.LearningRate);
        Assert.Equal("cosine", config.LrSchedulerType);
        Assert.Equal(4, config.PerDeviceTrainBatchSize);
        Assert.True(config.UseRsLora);
        Assert.Equal(2, config.NumTrainEpochs);
    }

    [Fact]
    public void Empty_file_gives_the_tutorial_defaults()
    {
        var config = TrainingConfigLoader.Parse("# nothing set\n", "lora.yaml");
        Assert.Equal(16, config.R);
        Assert.Equal(2e-4, config.LearningRate);
        Assert.Equal(7, config.TargetModules.Count);
        Assert.Equal(3407, config.Seed);
    }

    [Fact]
    public void Misspelt_key_is_an_error_at_its_line_suggesting_the_right_key()
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 8\nlearning_rat: 0.001\n", "lora.yaml"));
        Assert.Equal("FT3003", e.Code);
        Assert.Equal(2, e.Line);
        Assert.Contains("'learning_rate'", e.Message);
        Assert.StartsWith("lora.yaml(2,1): error FT3003:", e.ToCanonicalString());
    }

    /// <summary>A config with several mistakes: the build lists each at its line, as a compiler does, not one per build.</summary>
    [Fact]
    public void Every_mistaken_key_is_reported_at_once_in_file_order()
    {
        const string yaml = "r: sixteen\nlora_alpha: 32\nlearnig_rate: 0.001\nlr_scheduler_type: exponential\nseed: 1\n";
        var e = Assert.Throws<FineTuneErrors>(() => TrainingConfigLoader.Parse(yaml, "lora.yaml"));
        Assert.Equal(
            [("FT3005", 1, 4), ("FT3003", 3, 1), ("FT3005", 4, 20)],
            e.Errors.Select(x => (x.Code, x.Line, x.Column)).ToArray());
        var lines = e.ToCanonicalString().Split(Environment.NewLine);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("lora.yaml(1,4): error FT3005: r: expected a whole number of at least 1, found 'sixteen'.", lines[0]);
        Assert.StartsWith("lora.yaml(3,1): error FT3003: Unknown key 'learnig_rate' in LoRA config. Did you mean 'learning_rate'?", lines[1]);
        Assert.StartsWith("lora.yaml(4,20): error FT3005: lr_scheduler_type:", lines[2]);
        // Code that reads one error sees the first.
        Assert.Equal(("FT3005", 1), (e.Code, e.Line));
    }

    [Fact]
    public void Checks_across_keys_wait_until_every_key_reads()
    {
        // beta belongs to DPO: that check reads trainer, so it runs only once every key has read without error.
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 0\nbeta: 0.1\n", "lora.yaml"));
        Assert.Equal(("FT3005", 1), (e.Code, e.Line));
        var trainer = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 8\nbeta: 0.1\n", "lora.yaml"));
        Assert.Equal(("FT3120", 2), (trainer.Code, trainer.Line));
    }

    [Fact]
    public void Trl_packing_false_loads_and_packing_true_is_refused_at_its_line()
    {
        Assert.Equal(8, TrainingConfigLoader.Parse("r: 8\npacking: false\n", "lora.yaml").R);
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 8\npacking: true\n", "lora.yaml"));
        Assert.StartsWith("lora.yaml(2,1): error FT3170: packing: true is not offered.", e.ToCanonicalString());
        Assert.Contains("padding-free", e.Message);
        var typo = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("packing: sometimes\n", "lora.yaml"));
        Assert.Equal("FT3005", typo.Code);
    }

    [Theory]
    [InlineData("r: eight", "whole number")]
    [InlineData("r: 0", "at least 1")]
    [InlineData("lora_dropout: 1.5", "from 0 to 0.999")]
    [InlineData("use_rslora: maybe", "true or false")]
    [InlineData("lr_scheduler_type: exponential", "linear, cosine, constant")]
    [InlineData("target_modules: [q_proj, lm_head]", "lm_head")]
    public void Wrong_values_say_what_was_expected(string yaml, string expected)
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse(yaml, "lora.yaml"));
        Assert.Equal("FT3005", e.Code);
        Assert.Equal(1, e.Line);
        Assert.Contains(expected, e.Message);
    }

    /// <summary>What a user sees in the build log: the file position, the key, what it accepts and what it found.</summary>
    [Theory]
    [InlineData("learning_rate: -0.01", "lora.yaml(2,16): error FT3005: learning_rate: must be a number greater than 0 (training with -0.01 would not learn or would divide by zero), found -0.01.")]
    [InlineData("learning_rate: 0", "lora.yaml(2,16): error FT3005: learning_rate: must be a number greater than 0 (training with 0 would not learn or would divide by zero), found 0.")]
    [InlineData("lora_alpha: 0", "lora.yaml(2,13): error FT3005: lora_alpha: must be a number greater than 0 (training with 0 would not learn or would divide by zero), found 0.")]
    [InlineData("r: 0", "lora.yaml(2,4): error FT3005: r: must be a whole number of at least 1, found 0.")]
    [InlineData("per_device_train_batch_size: 0", "lora.yaml(2,30): error FT3005: per_device_train_batch_size: must be a whole number of at least 1, found 0.")]
    [InlineData("gradient_accumulation_steps: -2", "lora.yaml(2,30): error FT3005: gradient_accumulation_steps: must be a whole number of at least 1, found -2.")]
    [InlineData("warmup_ratio: 2", "lora.yaml(2,15): error FT3005: warmup_ratio: must be a number from 0 to 1, found 2.")]
    [InlineData("learning_rate: fast", "lora.yaml(2,16): error FT3005: learning_rate: expected a number greater than 0, found 'fast'.")]
    [InlineData("max_steps: [1, 2]", "lora.yaml(2,12): error FT3005: max_steps: expected a whole number of at least 0, found a list.")]
    public void Untrainable_and_mistyped_values_name_the_key_the_allowed_range_and_the_position(string line, string expected)
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("seed: 1\n" + line + "\n", "lora.yaml"));
        Assert.Equal(expected, e.ToCanonicalString());
    }

    [Fact]
    public void Invalid_yaml_reports_its_position()
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 8\nlora_alpha: [16\n", "lora.yaml"));
        Assert.Equal("FT3002", e.Code);
        Assert.True(e.Line >= 2);
    }

    [Fact]
    public void Training_that_would_do_nothing_is_rejected()
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("max_steps: 0\nnum_train_epochs: 0\n", "lora.yaml"));
        Assert.Equal("FT3004", e.Code);
    }

    [Fact]
    public void Description_covers_exactly_the_known_keys()
    {
        var described = TrainingConfigDescription.Describe(new TrainingConfig()).Select(p => p.Key).Order().ToArray();
        Assert.Equal(TrainingConfigLoader.KnownKeys.Order().ToArray(), described);
    }

    [Fact]
    public void Description_reflects_the_parsed_values()
    {
        var config = TrainingConfigLoader.Parse("r: 4\nseed: 7\n", "lora.yaml");
        var d = TrainingConfigDescription.Describe(config).ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(4, d["r"]);
        Assert.Equal(7, d["seed"]);
    }

    /// <summary>gradient_checkpointing: offload turns checkpointing on and asks for the host-memory offload; the manifest says offload.</summary>
    [Theory]
    [InlineData("gradient_checkpointing: offload", true, true, "offload")]
    [InlineData("gradient_checkpointing: unsloth", true, true, "offload")]
    [InlineData("gradient_checkpointing: true", true, false, true)]
    [InlineData("gradient_checkpointing: false", false, false, false)]
    [InlineData("r: 4", true, false, true)]
    public void Gradient_checkpointing_reads_true_false_and_offload(string yaml, bool checkpointing, bool offload, object described)
    {
        var config = TrainingConfigLoader.Parse(yaml, "lora.yaml");
        Assert.Equal(checkpointing, config.GradientCheckpointing);
        Assert.Equal(offload, config.OffloadCheckpoints);
        Assert.Equal(described, TrainingConfigDescription.Describe(config).Single(p => p.Key == "gradient_checkpointing").Value);
    }

    /// <summary>gpu_memory_limit is GiB, as a number or with the unit written (axolotl's spelling); the manifest names it.</summary>
    [Theory]
    [InlineData("gpu_memory_limit: 8", 8L << 30, "8GiB")]
    [InlineData("gpu_memory_limit: 7.5GiB", 15L << 29, "7.5GiB")]
    [InlineData("gpu_memory_limit: 24 GiB", 24L << 30, "24GiB")]
    [InlineData("gpu_memory_limit: 0.25gib", 1L << 28, "0.25GiB")]
    public void Gpu_memory_limit_reads_gib(string yaml, long bytes, string described)
    {
        var config = TrainingConfigLoader.Parse(yaml, "lora.yaml");
        Assert.Equal(bytes, config.GpuMemoryLimit);
        Assert.Equal(described, TrainingConfigDescription.Describe(config).Single(p => p.Key == "gpu_memory_limit").Value);
        Assert.Null(TrainingConfigLoader.Parse("r: 8", "lora.yaml").GpuMemoryLimit);
        Assert.Equal("none", TrainingConfigDescription.Describe(new TrainingConfig()).Single(p => p.Key == "gpu_memory_limit").Value);
    }

    /// <summary>A limit that cannot be a size, and GB, which is 7% less than GiB and is refused rather than guessed at.</summary>
    [Theory]
    [InlineData("gpu_memory_limit: 16GB", "lora.yaml(2,19): error FT3005: gpu_memory_limit: expected a size in GiB greater than 0, e.g. 8 or 8GiB, found '16GB': write the size in GiB")]
    [InlineData("gpu_memory_limit: 0", "lora.yaml(2,19): error FT3005: gpu_memory_limit: must be a size in GiB greater than 0, e.g. 8 or 8GiB, found '0'.")]
    [InlineData("gpu_memory_limit: lots", "lora.yaml(2,19): error FT3005: gpu_memory_limit: expected a size in GiB greater than 0, e.g. 8 or 8GiB, found 'lots'.")]
    public void Wrong_gpu_memory_limit_is_ft3005_at_its_position(string line, string expected)
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 8\n" + line + "\n", "lora.yaml"));
        Assert.StartsWith(expected, e.ToCanonicalString());
    }

    [Theory]
    [InlineData("gradient_checkpointing: cpu", "lora.yaml(2,25): error FT3180: gradient_checkpointing: expected true, false or offload, found 'cpu'.")]
    [InlineData("gradient_checkpointing: 1", "lora.yaml(2,25): error FT3180: gradient_checkpointing: expected true, false or offload, found '1'.")]
    public void Wrong_gradient_checkpointing_value_is_ft3180_at_its_position(string line, string expected)
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("r: 8\n" + line + "\n", "lora.yaml"));
        Assert.StartsWith(expected, e.ToCanonicalString());
    }

    /// <summary>QLoRA's keys as a BitsAndBytesConfig from a notebook is written in lora.yaml.</summary>
    [Fact]
    public void Reads_the_bitsandbytes_4bit_keys()
    {
        var config = TrainingConfigLoader.Parse("""
            load_in_4bit: true
            bnb_4bit_quant_type: fp4
            bnb_4bit_use_double_quant: false
            bnb_4bit_compute_dtype: torch.bfloat16
            """, "lora.yaml");
        Assert.True(config.LoadIn4Bit);
        Assert.Equal("fp4", config.Bnb4BitQuantType);
        Assert.False(config.Bnb4BitUseDoubleQuant);
        Assert.Equal("bfloat16", config.Bnb4BitComputeDtype);
        var d = TrainingConfigDescription.Describe(config).ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal(true, d["load_in_4bit"]);
        Assert.Equal("fp4", d["bnb_4bit_quant_type"]);
    }

    [Fact]
    public void Four_bit_defaults_are_qlora_nf4_with_double_quantization_and_off_until_asked()
    {
        var config = TrainingConfigLoader.Parse("load_in_4bit: true\n", "lora.yaml");
        Assert.True(config.LoadIn4Bit);
        Assert.Equal("nf4", config.Bnb4BitQuantType);
        Assert.True(config.Bnb4BitUseDoubleQuant);
        Assert.Equal("bfloat16", config.Bnb4BitComputeDtype);
        Assert.False(new TrainingConfig().LoadIn4Bit);
    }

    [Theory]
    [InlineData("bnb_4bit_quant_type: int4", "lora.yaml(2,22): error FT3005: bnb_4bit_quant_type: expected one of nf4, fp4, found 'int4'.")]
    [InlineData("bnb_4bit_compute_dtype: float16", "lora.yaml(2,25): error FT3005: bnb_4bit_compute_dtype: expected bfloat16 (the engine dequantizes 4-bit weights to bf16 for every product), found 'float16'.")]
    [InlineData("load_in_4bit: sometimes", "lora.yaml(2,15): error FT3005: load_in_4bit: expected true or false, found 'sometimes'.")]
    [InlineData("bnb_4bit_use_double_quant: 2", "lora.yaml(2,28): error FT3005: bnb_4bit_use_double_quant: expected true or false, found '2'.")]
    public void Wrong_4bit_values_name_the_key(string line, string expected)
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("seed: 1\n" + line + "\n", "lora.yaml"));
        Assert.Equal(expected, e.ToCanonicalString());
    }

    [Fact]
    public void Misspelt_4bit_key_suggests_the_bitsandbytes_name()
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse("load_in_4_bit: true\n", "lora.yaml"));
        Assert.Equal("FT3003", e.Code);
        Assert.Contains("'load_in_4bit'", e.Message);
    }
}
