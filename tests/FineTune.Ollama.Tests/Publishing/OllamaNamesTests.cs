using FineTune.Core.Diagnostics;
using FineTune.Ollama.Publishing;

namespace FineTune.Ollama.Tests.Publishing;

public class OllamaNamesTests
{
    [Theory]
    [InlineData("localhost", "http://localhost:11434/")]
    [InlineData("localhost:8080", "http://localhost:8080/")]
    [InlineData(":9999", "http://127.0.0.1:9999/")]
    [InlineData("", "http://127.0.0.1:11434/")]
    [InlineData("0.0.0.0", "http://0.0.0.0:11434/")]
    [InlineData("http://example.com", "http://example.com/")]
    [InlineData("https://example.com", "https://example.com/")]
    [InlineData("http://example.com:11434", "http://example.com:11434/")]
    [InlineData("https://example.com/ollama", "https://example.com/ollama/")]
    [InlineData("  http://10.0.0.5:1234  ", "http://10.0.0.5:1234/")]
    [InlineData("[::1]:11434", "http://[::1]:11434/")]
    [InlineData("ollama.com", "https://ollama.com/")]
    public void Host_forms_follow_Ollama(string value, string expected) => Assert.Equal(expected, OllamaHost.Parse(value).AbsoluteUri);

    [Theory]
    [InlineData("ftp://host")]
    [InlineData("host:port")]
    [InlineData("host:70000")]
    public void Bad_hosts_are_FT5004(string value) => Assert.Equal("FT5004", Assert.Throws<FineTuneException>(() => OllamaHost.Parse(value)).Code);

    [Theory]
    [InlineData("tweet-caps:1.0.0", "tweet-caps", "1.0.0")]
    [InlineData("tweet-caps", "tweet-caps", "latest")]
    [InlineData("me/tweet_caps:1.0.0-beta.2", "me/tweet_caps", "1.0.0-beta.2")]
    [InlineData("tweet.caps:1.0.0+sha.abc", "tweet.caps", "1.0.0_sha.abc")]
    [InlineData("registry.local:5000/me/m:v1", "registry.local:5000/me/m", "v1")]
    public void Valid_names(string name, string model, string tag) => Assert.Equal(new OllamaModelName(model, tag), OllamaModelName.Parse(name));

    [Theory]
    [InlineData("tweet caps:1")]
    [InlineData("-caps:1")]
    [InlineData("caps:-1")]
    [InlineData("caps:")]
    [InlineData("my.ns/caps:1")]
    [InlineData("a/b/c/d:1")]
    [InlineData("caps:1.0.0/x")]
    public void Invalid_names_are_FT5005(string name) =>
        Assert.Equal("FT5005", Assert.Throws<FineTuneException>(() => OllamaModelName.Parse(name)).Code);

    [Fact]
    public void Tags_longer_than_80_characters_are_FT5005() =>
        Assert.Equal("FT5005", Assert.Throws<FineTuneException>(() => OllamaModelName.Parse("m:" + new string('1', 81))).Code);

    [Fact]
    public void Build_metadata_maps_to_an_underscore_so_prerelease_and_build_never_collide() =>
        Assert.NotEqual(OllamaModelName.TagFromVersion("1.0.0+abc"), OllamaModelName.TagFromVersion("1.0.0-abc"));
}
