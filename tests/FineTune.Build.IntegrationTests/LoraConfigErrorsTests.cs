using System.Text.RegularExpressions;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A lora.yaml with several mistakes fails `dotnet build` with every one of them, each an error at
/// its own line as MSBuild and IDEs show it, so one edit fixes them all instead of one build each.
/// </summary>
public class LoraConfigErrorsTests
{
    [Fact]
    public void Every_mistake_in_lora_yaml_is_its_own_error_in_one_build()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 3, withTinyBaseModel: true);
        clone.EditFile("lora.yaml", text => text + "\nwarmup_ratio: lots\nlearnig_rate: 0.001\nbnb_4bit_quant_type: int4\n");
        var build = clone.Dotnet("build");
        Assert.False(build.Succeeded, build.ToString());
        Assert.Matches(@"lora\.yaml\(\d+,15\): error FT3005: warmup_ratio: expected a number from 0 to 1, found 'lots'\.", build.Output);
        Assert.Matches(@"lora\.yaml\(\d+,1\): error FT3003: Unknown key 'learnig_rate' in LoRA config\. Did you mean 'learning_rate'\?", build.Output);
        Assert.Matches(@"lora\.yaml\(\d+,22\): error FT3005: bnb_4bit_quant_type: expected one of nf4, fp4, found 'int4'\.", build.Output);
        Assert.Matches(new Regex(@"^\s*3 Error\(s\)", RegexOptions.Multiline), build.Output);
    }
}
