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

    [Theory]
    [InlineData("r: eight", "whole number")]
    [InlineData("r: 0", "at least 1")]
    [InlineData("lora_dropout: 1.5", "between")]
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
}
