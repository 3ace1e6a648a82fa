using FineTune.Core.Config;
using FineTune.Core.Diagnostics;

namespace FineTune.Core.Tests;

/// <summary>lora.yaml keys of preference training, under TRL's names (DPOConfig, ORPOConfig).</summary>
public sealed class PreferenceConfigTests
{
    [Fact]
    public void Reads_trl_dpo_keys_and_defaults_to_trls_values()
    {
        var config = TrainingConfigLoader.Parse("trainer: dpo\nbeta: 0.25\nloss_type: ipo\nmax_prompt_length: 64\nmax_length: 128\ntruncation_mode: keep_start\n", "lora.yaml");
        Assert.True(config.IsPreference);
        Assert.Equal("dpo", config.Trainer);
        Assert.Equal(0.25, config.Beta);
        Assert.Equal("ipo", config.LossType);
        Assert.Equal((64, 128, "keep_start"), (config.MaxPromptLength, config.MaxLength, config.TruncationMode));

        var defaults = TrainingConfigLoader.Parse("trainer: orpo\n", "lora.yaml");
        Assert.Equal((0.1, "sigmoid", 0.0, 512, 1024, "keep_end"),
            (defaults.Beta, defaults.LossType, defaults.LabelSmoothing, defaults.MaxPromptLength, defaults.MaxLength, defaults.TruncationMode));
        Assert.False(new TrainingConfig().IsPreference);
    }

    [Theory]
    [InlineData("trainer: ppo", "lora.yaml(1,10): error FT3005: trainer: expected one of sft, dpo, orpo, found 'ppo'.")]
    [InlineData("trainer: dpo\nloss_type: kto", "lora.yaml(2,12): error FT3005: loss_type: expected one of sigmoid, ipo, hinge, found 'kto'.")]
    [InlineData("trainer: dpo\nbeta: 0", "lora.yaml(2,7): error FT3005: beta: must be a number greater than 0 (training with 0 would not learn or would divide by zero), found 0.")]
    [InlineData("trainer: dpo\nlabel_smoothing: 0.7", "lora.yaml(2,18): error FT3005: label_smoothing: must be a number from 0 to 0.499, found 0.7.")]
    [InlineData("beta: 0.2", "lora.yaml(1,1): error FT3120: beta: applies to trainer: dpo or orpo, but this config trains with trainer: sft. Remove beta or set trainer.")]
    [InlineData("trainer: orpo\nloss_type: ipo", "lora.yaml(2,1): error FT3120: loss_type: applies to trainer: dpo, but this config trains with trainer: orpo. Remove loss_type or set trainer.")]
    [InlineData("trainer: dpo\nloss_type: hinge\nlabel_smoothing: 0.1", "lora.yaml(3,1): error FT3121: label_smoothing: only the sigmoid DPO loss has label smoothing (conservative DPO); loss_type: hinge has none. Remove label_smoothing or use loss_type: sigmoid.")]
    [InlineData("trainer: dpo\nmax_length: 100\nmax_prompt_length: 100", "lora.yaml(3,1): error FT3121: max_prompt_length: 100 leaves no room for the completion within max_length: 100. Make max_prompt_length smaller than max_length.")]
    public void Mistakes_name_the_key_and_its_position(string yaml, string expected)
    {
        var e = Assert.Throws<FineTuneException>(() => TrainingConfigLoader.Parse(yaml + "\n", "lora.yaml"));
        Assert.Equal(expected, e.ToCanonicalString());
    }
}
