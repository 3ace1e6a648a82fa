using FineTune.Core.Diagnostics;
using FineTune.Ollama.Modelfiles;

namespace FineTune.Ollama.Tests.Modelfiles;

public class OllamaParametersTests
{
    [Theory]
    [InlineData("temperature", "0.7", 0.7)]
    [InlineData("top_p", "1e-1", 0.1)]
    [InlineData("min_p", "-0.5", -0.5)]
    public void Floats(string name, string text, double expected) => Assert.Equal(expected, (double)OllamaParameters.Convert(name, text));

    [Theory]
    [InlineData("num_ctx", "4096", 4096L)]
    [InlineData("seed", "-1", -1L)]
    [InlineData("num_predict", "+128", 128L)]
    public void Integers(string name, string text, long expected) => Assert.Equal(expected, (long)OllamaParameters.Convert(name, text));

    [Theory]
    [InlineData("T", true)]
    [InlineData("true", true)]
    [InlineData("1", true)]
    [InlineData("False", false)]
    [InlineData("0", false)]
    public void Booleans_use_Go_spellings(string text, bool expected) => Assert.Equal(expected, (bool)OllamaParameters.Convert("use_mmap", text));

    [Theory]
    [InlineData("num_ctx", "4k")]
    [InlineData("seed", "1.0")]
    [InlineData("temperature", "NaN")]
    [InlineData("use_mmap", "yes")]
    [InlineData("mirostat", "1")]
    public void Rejected(string name, string text) =>
        Assert.Equal("FT5003", Assert.Throws<FineTuneException>(() => OllamaParameters.Convert(name, text)).Code);
}
