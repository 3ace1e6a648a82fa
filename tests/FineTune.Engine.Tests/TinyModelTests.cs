using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests;

public class TinyModelTests
{
    [Fact]
    public void Generation_is_deterministic_and_loadable()
    {
        using var dir = new TempDir();
        var tok = TestModels.WriteTokenizer(dir["tok"], 40);
        var shape = new TinyModelShape(Layers: 1, Hidden: 16, Heads: 4, KvHeads: 2, Intermediate: 24, Seed: 7);
        TinyModelFactory.Create(tok, dir["a"], shape);
        TinyModelFactory.Create(tok, dir["b"], shape);
        Assert.Equal(File.ReadAllBytes(dir["a/model.safetensors"]), File.ReadAllBytes(dir["b/model.safetensors"]));
        var config = ModelConfig.Load(dir["a"]);
        Assert.Equal(40, config.VocabSize);
        Assert.Equal(38, config.BosTokenId);
        Assert.Equal(39, config.EosTokenId);
        Assert.True(File.Exists(dir["a/tokenizer.json"]) && File.Exists(dir["a/generation_config.json"]));
        var model = LlamaModel.Load(dir["a"]);
        var logits = model.Logits([1, 2, 3]);
        Assert.Equal(3 * 40, logits.Length);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        using var w = ModelWeights.Open(dir["a"]);
        var embed = w.ReadF32("model.embed_tokens.weight");
        var std = Math.Sqrt(embed.Average(x => (double)x * x));
        Assert.InRange(std, 0.015, 0.025);
    }
}
