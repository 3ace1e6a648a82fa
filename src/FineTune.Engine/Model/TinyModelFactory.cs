using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Model;

/// <summary>The shape of a generated model; <c>Architecture</c> is its <c>model_type</c>, llama or gemma3_text (see <see cref="TinyModelFactory"/>).</summary>
public sealed record TinyModelShape(int Layers = 2, int Hidden = 64, int Heads = 4, int KvHeads = 2, int Intermediate = 128, int Seed = 42, string Architecture = "llama");

/// <summary>
/// Writes a deterministic random-init Llama model in Hugging Face layout (config.json,
/// generation_config.json, model.safetensors, the tokenizer files), for tests and the example:
/// no weights can be downloaded here, so the project makes its own base model. A gemma3_text model
/// keeps every Gemma 3 trait that changes the numbers: scaled and tied embeddings, offset norms
/// (stored as zeros), sandwich norms, GeGLU, q/k norms, layers alternating sliding-window (32 tokens,
/// RoPE base 10000) and global (base 1e6), with query_pre_attn_scalar = head_dim as in the 1B–12B
/// releases (the scale llama.cpp's gemma3 graph uses).
/// </summary>
public static class TinyModelFactory
{
    /// <summary>The architectures <see cref="Create"/> writes.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["llama", "gemma3_text"];

    /// <summary>Creates the model folder <paramref name="outDirectory"/> from the tokenizer in <paramref name="tokenizerDirectory"/>.</summary>
    public static ModelConfig Create(string tokenizerDirectory, string outDirectory, TinyModelShape shape)
    {
        var tokenizerJson = Path.Combine(tokenizerDirectory, "tokenizer.json");
        if (!File.Exists(tokenizerJson))
            throw new FineTuneException("FT3020", "The tokenizer folder has no tokenizer.json.", tokenizerDirectory);
        if (shape.Layers < 1 || shape.Hidden < 1 || shape.Heads < 1 || shape.KvHeads < 1 || shape.Intermediate < 1
            || shape.Hidden % shape.Heads != 0 || shape.Heads % shape.KvHeads != 0 || shape.Hidden / shape.Heads % 2 != 0)
            throw new FineTuneException("FT3021",
                $"Invalid model shape: hidden ({shape.Hidden}) must split into heads ({shape.Heads}) of even size, and heads must be a multiple of kv-heads ({shape.KvHeads}).");
        var (vocab, tokens) = ReadVocabulary(tokenizerJson);
        var configPath = Path.Combine(tokenizerDirectory, "tokenizer_config.json");
        var tokConfig = File.Exists(configPath) ? JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject : null;
        int? Id(string? token) => token is not null && tokens.TryGetValue(token, out var id) ? id : null;
        var bos = Id(TokenText(tokConfig?["bos_token"]));
        var eos = Id(TokenText(tokConfig?["eos_token"]));
        var gemma = shape.Architecture == "gemma3_text";
        if (!Architectures.Contains(shape.Architecture))
            throw new FineTuneException("FT3021", $"Unknown architecture '{shape.Architecture}'; new-tiny-model writes {string.Join(" or ", Architectures)}.");
        var config = gemma ? GemmaConfig(shape, vocab, bos, eos) : new ModelConfig
        {
            ModelType = "llama",
            VocabSize = vocab,
            HiddenSize = shape.Hidden,
            IntermediateSize = shape.Intermediate,
            NumLayers = shape.Layers,
            NumHeads = shape.Heads,
            NumKvHeads = shape.KvHeads,
            HeadDim = shape.Hidden / shape.Heads,
            RmsNormEps = 1e-5,
            RopeTheta = 500000,
            MaxPositionEmbeddings = 4096,
            TieWordEmbeddings = false,
            BosTokenId = bos,
            EosTokenId = eos,
            DType = "float32",
        };
        // End-of-turn tokens of common chat templates also stop generation.
        var stops = new List<int>();
        if (eos is { } e) stops.Add(e);
        foreach (var t in new[] { "<|eot_id|>", "<|im_end|>", "<|end|>", "<|eom_id|>", "<end_of_turn>", "<eos>" })
            if (Id(t) is { } s && !stops.Contains(s)) stops.Add(s);
        var generation = new JsonObject { ["do_sample"] = false, ["transformers_version"] = "4.46.0" };
        if (bos is { } b) generation["bos_token_id"] = b;
        if (stops.Count > 0) generation["eos_token_id"] = new JsonArray(stops.Select(s => (JsonNode)s).ToArray());
        var tensors = RandomTensors(config, shape.Seed).ToList();
        AtomicFile.WriteDirectory(outDirectory, dir =>
        {
            File.Copy(tokenizerJson, Path.Combine(dir, "tokenizer.json"));
            if (File.Exists(configPath)) File.Copy(configPath, Path.Combine(dir, "tokenizer_config.json"));
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJson() + "\n");
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), generation.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        });
        return config;
    }

    private static ModelConfig GemmaConfig(TinyModelShape shape, int vocab, int? bos, int? eos)
    {
        var headDim = shape.Hidden / shape.Heads;
        return new ModelConfig
        {
            ModelType = "gemma3_text",
            VocabSize = vocab,
            HiddenSize = shape.Hidden,
            IntermediateSize = shape.Intermediate,
            NumLayers = shape.Layers,
            NumHeads = shape.Heads,
            NumKvHeads = shape.KvHeads,
            HeadDim = headDim,
            RmsNormEps = 1e-6,
            RopeTheta = 1_000_000,
            RopeLocalTheta = 10_000,
            MaxPositionEmbeddings = 4096,
            TieWordEmbeddings = true,
            QkNorm = true,
            EmbeddingScale = MathF.Sqrt(shape.Hidden),
            NormWeightOffset = true,
            SandwichNorms = true,
            Activation = GateActivation.GeluTanh,
            QueryPreAttnScalar = headDim,
            SlidingWindow = 32,
            SlidingLayers = Enumerable.Range(0, shape.Layers).Select(l => (l + 1) % 2 != 0).ToArray(),
            BosTokenId = bos,
            EosTokenId = eos,
        };
    }

    private static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => (string?)o["content"],
        _ => null,
    };

    /// <summary>Vocabulary size (largest id + 1 over the model vocab and the added tokens) and the added tokens by text.</summary>
    private static (int Size, Dictionary<string, int> Added) ReadVocabulary(string tokenizerJson)
    {
        try
        {
            using var stream = File.OpenRead(tokenizerJson);
            using var doc = JsonDocument.Parse(stream);
            var max = -1;
            var added = new Dictionary<string, int>(StringComparer.Ordinal);
            if (doc.RootElement.TryGetProperty("model", out var model) && model.TryGetProperty("vocab", out var vocab))
            {
                if (vocab.ValueKind == JsonValueKind.Object)
                    foreach (var p in vocab.EnumerateObject()) max = Math.Max(max, p.Value.GetInt32());
                else if (vocab.ValueKind == JsonValueKind.Array)
                    max = Math.Max(max, vocab.GetArrayLength() - 1);
            }
            if (doc.RootElement.TryGetProperty("added_tokens", out var list))
                foreach (var t in list.EnumerateArray())
                {
                    var id = t.GetProperty("id").GetInt32();
                    added[t.GetProperty("content").GetString()!] = id;
                    max = Math.Max(max, id);
                }
            if (max < 0) throw new FineTuneException("FT3020", "tokenizer.json has an empty vocabulary.", tokenizerJson);
            return (max + 1, added);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new FineTuneException("FT3020", "tokenizer.json is not a valid Hugging Face tokenizer file: " + e.Message, tokenizerJson);
        }
    }

    /// <summary>Normal(0, 0.02) weights as Hugging Face's initializer_range, norms at one.</summary>
    private static IEnumerable<TensorToWrite> RandomTensors(ModelConfig c, int seed)
    {
        var rng = new DeterministicRandom((ulong)seed);
        float[] Normal(long count)
        {
            var a = new float[count];
            for (var i = 0; i < a.Length; i++) a[i] = (float)(rng.NextGaussian() * 0.02);
            return a;
        }
        float[] Ones(int count) => Enumerable.Repeat(1f, count).ToArray();
        yield return new("model.embed_tokens.weight", [c.VocabSize, c.HiddenSize], Normal((long)c.VocabSize * c.HiddenSize));
        if (c.NormWeightOffset)
        {
            // Gemma stores norms as offsets from one: zeros are the identity, as in transformers' init.
            foreach (var t in LlamaTensorLayout.For(c).Where(t => t.Kind != LlamaTensorKind.Embedding))
                yield return new(t.Name, t.Shape, t.Kind == LlamaTensorKind.Linear ? Normal(t.ElementCount) : new float[t.ElementCount]);
            yield break;
        }
        for (var l = 0; l < c.NumLayers; l++)
        {
            yield return new($"model.layers.{l}.input_layernorm.weight", [c.HiddenSize], Ones(c.HiddenSize));
            yield return new($"model.layers.{l}.post_attention_layernorm.weight", [c.HiddenSize], Ones(c.HiddenSize));
            foreach (var p in Projections.All)
                yield return new(LlamaWeights.LinearName(l, p), [p.OutFeatures(c), p.InFeatures(c)], Normal((long)p.OutFeatures(c) * p.InFeatures(c)));
        }
        yield return new("model.norm.weight", [c.HiddenSize], Ones(c.HiddenSize));
        yield return new("lm_head.weight", [c.VocabSize, c.HiddenSize], Normal((long)c.VocabSize * c.HiddenSize));
    }
}
