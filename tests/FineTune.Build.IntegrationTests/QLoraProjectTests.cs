using System.Text.Json;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A model repository whose lora.yaml asks for QLoRA, as a notebook's BitsAndBytesConfig is pasted in,
/// built with `dotnet build` (the CPU trains over the 4-bit projections): it ends with the GGUF and the
/// Modelfile, the manifest says the base weights were 4-bit, and a second build redoes nothing.
/// </summary>
public class QLoraProjectTests
{
    [Fact]
    public void A_load_in_4bit_project_builds_gguf_and_modelfile_and_records_4bit_training()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 3, withTinyBaseModel: true);
        clone.EditFile("lora.yaml", text => text + "\nload_in_4bit: true\nbnb_4bit_quant_type: nf4\nbnb_4bit_use_double_quant: true\nbnb_4bit_compute_dtype: bfloat16\n");
        var first = clone.Dotnet("build");
        Assert.True(first.Succeeded, first.ToString());
        foreach (var file in new[] { "tweet-caps-1.0.0.Q8_0.gguf", "Modelfile", "model-manifest.json" })
            Assert.True(File.Exists(Path.Combine(clone.OutputDir, file)), $"{file} missing:\n{first}");

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(clone.OutputDir, "model-manifest.json")));
        Assert.Equal("4-bit nf4, double quantization, bf16 compute", manifest.RootElement.GetProperty("tool").GetProperty("base_weights").GetString());
        var hyper = manifest.RootElement.GetProperty("hyperparameters");
        Assert.True(hyper.GetProperty("load_in_4bit").GetBoolean());
        Assert.Equal("nf4", hyper.GetProperty("bnb_4bit_quant_type").GetString());
        Assert.Contains("load_in_4bit", File.ReadAllText(Path.Combine(clone.OutputDir, "report.html")));

        var second = clone.Dotnet("build");
        Assert.True(second.Succeeded, second.ToString());
        foreach (var step in new[] { "FineTuneTrain", "FineTuneModelfile", "FineTuneManifest" })
        {
            Assert.False(second.Ran(step), $"{step} re-ran:\n{second}");
            Assert.True(second.UpToDate(step), $"{step} did not say it is up to date:\n{second}");
        }
    }

    [Fact]
    public void A_misspelt_4bit_value_fails_the_build_at_its_line()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 3, withTinyBaseModel: true);
        clone.EditFile("lora.yaml", text => text + "\nbnb_4bit_quant_type: int4\n");
        var build = clone.Dotnet("build");
        Assert.False(build.Succeeded, build.ToString());
        Assert.Matches(@"lora\.yaml\(\d+,22\): error FT3005: bnb_4bit_quant_type: expected one of nf4, fp4, found 'int4'\.", build.Output);
    }
}
