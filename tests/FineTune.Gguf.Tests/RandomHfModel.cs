using FineTune.Engine;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Gguf.Tests;

/// <summary>
/// A random model of any supported <c>model_type</c> in Hugging Face layout, with a real tokenizer.
/// Unlike the tiny model of the example, every tensor is random — norms around one, biases and
/// q/k norms included — so a tensor the export maps to the wrong name, transposes, permutes or
/// drops changes llama.cpp's logits instead of hiding behind a weight of ones or zeros.
/// </summary>
internal static class RandomHfModel
{
    public static ModelConfig Write(string dir, string tokenizerDir, ModelConfig shape, int seed)
    {
        Directory.CreateDirectory(dir);
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizerDir, file), Path.Combine(dir, file));
        File.WriteAllText(Path.Combine(dir, "config.json"), shape.ToJson());
        // Read back: the test must see exactly what config.json says (biases, tied head, q/k norms).
        var c = ModelConfig.Load(dir);
        var rng = new DeterministicRandom((ulong)seed);
        float[] R(long n, double mean, double std)
        {
            var a = new float[n];
            for (var i = 0; i < a.Length; i++) a[i] = (float)(mean + rng.NextGaussian() * std);
            return a;
        }
        var t = new List<TensorToWrite> { new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], R((long)c.VocabSize * c.HiddenSize, 0, 0.5)) };
        if (c.NormWeightOffset)
        {
            // Gemma: every tensor of the layout; norms are stored as offsets from one, so around zero.
            foreach (var tensor in LlamaTensorLayout.For(c).Where(x => x.Kind != LlamaTensorKind.Embedding))
            {
                var norm = tensor.Kind is LlamaTensorKind.InputNorm or LlamaTensorKind.PostNorm or LlamaTensorKind.AttentionOutNorm
                    or LlamaTensorKind.MlpOutNorm or LlamaTensorKind.QNorm or LlamaTensorKind.KNorm or LlamaTensorKind.FinalNorm;
                t.Add(new(tensor.Name, tensor.Shape, R(tensor.ElementCount, 0, norm ? 0.2 : tensor.Kind == LlamaTensorKind.Bias ? 0.3 : 0.15)));
            }
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t);
            return c;
        }
        for (var l = 0; l < c.NumLayers; l++)
        {
            t.Add(new($"model.layers.{l}.input_layernorm.weight", [c.HiddenSize], R(c.HiddenSize, 1, 0.2)));
            t.Add(new($"model.layers.{l}.post_attention_layernorm.weight", [c.HiddenSize], R(c.HiddenSize, 1, 0.2)));
            foreach (var p in Projections.All)
            {
                t.Add(new(LlamaWeights.LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], R((long)p.OutFeatures(c) * p.InFeatures(c), 0, 0.15)));
                var bias = p is Projection.Q or Projection.K or Projection.V ? c.AttentionBias : p == Projection.O && c.OutputBias;
                if (bias) t.Add(new(LlamaWeights.LinearName(l, p, "bias"), [p.OutFeatures(c)], R(p.OutFeatures(c), 0, 0.3)));
            }
            if (c.QkNorm)
            {
                t.Add(new($"model.layers.{l}.self_attn.q_norm.weight", [c.HeadDim], R(c.HeadDim, 1, 0.3)));
                t.Add(new($"model.layers.{l}.self_attn.k_norm.weight", [c.HeadDim], R(c.HeadDim, 1, 0.3)));
            }
        }
        t.Add(new("model.norm.weight", [c.HiddenSize], R(c.HiddenSize, 1, 0.2)));
        if (!c.TieWordEmbeddings) t.Add(new("lm_head.weight", [c.VocabSize, c.HiddenSize], R((long)c.VocabSize * c.HiddenSize, 0, 0.2)));
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t);
        return c;
    }
}
