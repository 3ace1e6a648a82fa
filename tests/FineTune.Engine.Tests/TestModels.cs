using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests;

/// <summary>Small random models written to temporary folders in Hugging Face layout.</summary>
internal static class TestModels
{
    /// <summary>A tokenizer.json with a vocabulary of <paramref name="vocab"/> byte-ish tokens.</summary>
    public static string WriteTokenizer(string dir, int vocab = 48)
    {
        Directory.CreateDirectory(dir);
        var entries = string.Join(",", Enumerable.Range(0, vocab - 2).Select(i => $"\"t{i}\":{i}"));
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
            "{\"model\":{\"type\":\"BPE\",\"vocab\":{" + entries + "},\"merges\":[]}," +
            $"\"added_tokens\":[{{\"id\":{vocab - 2},\"content\":\"<s>\"}},{{\"id\":{vocab - 1},\"content\":\"</s>\"}}]}}");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}");
        return dir;
    }

    /// <summary>Writes a model of the given config with random weights (std <paramref name="std"/>) and returns its folder.</summary>
    public static string WriteModel(string dir, ModelConfig c, int seed = 1, double std = 0.3)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), c.ToJson());
        var rng = new DeterministicRandom((ulong)seed);
        float[] R(long n, double mean = 0) => Enumerable.Range(0, (int)n).Select(_ => (float)(mean + rng.NextGaussian() * std)).ToArray();
        var t = new List<TensorToWrite> { new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], R(c.VocabSize * c.HiddenSize)) };
        if (c.NormWeightOffset)
        {
            // Gemma: every tensor the layout names, norms stored as offsets around zero.
            foreach (var tensor in LlamaTensorLayout.For(c).Where(x => x.Kind != LlamaTensorKind.Embedding))
                t.Add(new(tensor.Name, tensor.Shape, R(tensor.ElementCount)));
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t);
            return dir;
        }
        for (var l = 0; l < c.NumLayers; l++)
        {
            t.Add(new($"model.layers.{l}.input_layernorm.weight", [c.HiddenSize], R(c.HiddenSize, 1)));
            t.Add(new($"model.layers.{l}.post_attention_layernorm.weight", [c.HiddenSize], R(c.HiddenSize, 1)));
            foreach (var p in Projections.All)
            {
                t.Add(new(LlamaWeights.LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], R(p.OutFeatures(c) * p.InFeatures(c))));
                var bias = p is Projection.Q or Projection.K or Projection.V ? c.AttentionBias : p == Projection.O && c.OutputBias;
                if (bias) t.Add(new(LlamaWeights.LinearName(l, p, "bias"), [p.OutFeatures(c)], R(p.OutFeatures(c))));
            }
            if (c.QkNorm)
            {
                t.Add(new($"model.layers.{l}.self_attn.q_norm.weight", [c.HeadDim], R(c.HeadDim, 1)));
                t.Add(new($"model.layers.{l}.self_attn.k_norm.weight", [c.HeadDim], R(c.HeadDim, 1)));
            }
        }
        t.Add(new("model.norm.weight", [c.HiddenSize], R(c.HiddenSize, 1)));
        if (!c.TieWordEmbeddings) t.Add(new("lm_head.weight", [c.VocabSize, c.HiddenSize], R(c.VocabSize * c.HiddenSize)));
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t);
        return dir;
    }

    public static ModelConfig Config(string type = "llama", bool bias = false, bool tie = false, int layers = 2, int vocab = 48) => type == "gemma3_text"
        ? Gemma(bias, layers, vocab)
        : new()
    {
        ModelType = type,
        VocabSize = vocab,
        HiddenSize = 16,
        IntermediateSize = 24,
        NumLayers = layers,
        NumHeads = 4,
        NumKvHeads = 2,
        HeadDim = 4,
        RmsNormEps = 1e-5,
        RopeTheta = 10000,
        TieWordEmbeddings = tie,
        AttentionBias = bias || type == "qwen2",
        OutputBias = bias && type is "llama" or "qwen3",
        QkNorm = type == "qwen3",
    };

    /// <summary>
    /// A Gemma 3 text model whose every feature changes the numbers: layers alternate local (window 3,
    /// shorter than the test sequences) and global with different RoPE bases, query_pre_attn_scalar
    /// differs from head_dim, embeddings are scaled, norms are offsets from one, GeGLU, tied head.
    /// </summary>
    public static ModelConfig Gemma(bool bias = false, int layers = 2, int vocab = 48) => new()
    {
        ModelType = "gemma3_text",
        VocabSize = vocab,
        HiddenSize = 16,
        IntermediateSize = 24,
        NumLayers = layers,
        NumHeads = 4,
        NumKvHeads = 2,
        HeadDim = 4,
        RmsNormEps = 1e-6,
        RopeTheta = 1_000_000,
        RopeLocalTheta = 10_000,
        TieWordEmbeddings = true,
        AttentionBias = bias,
        OutputBias = bias,
        QkNorm = true,
        EmbeddingScale = MathF.Sqrt(16),
        NormWeightOffset = true,
        SandwichNorms = true,
        Activation = GateActivation.GeluTanh,
        QueryPreAttnScalar = 6,
        SlidingWindow = 3,
        SlidingLayers = Enumerable.Range(0, layers).Select(l => l % 2 == 0).ToArray(),
        BosTokenId = vocab - 2,
        EosTokenId = vocab - 1,
    };
}

/// <summary>A temporary folder deleted after the test.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ft-engine-" + Guid.NewGuid().ToString("N")[..8]);
    public TempDir() => Directory.CreateDirectory(Path);
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
