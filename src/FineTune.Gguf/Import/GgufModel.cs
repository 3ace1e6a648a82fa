using System.Globalization;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;

namespace FineTune.Gguf.Import;

/// <summary>
/// A GGUF file the exporter wrote (llama.cpp's <c>llama</c>, <c>qwen2</c>, <c>qwen3</c> or
/// <c>gemma3</c> architecture), opened as engine weights: the hyper-parameters become a
/// <see cref="ModelConfig"/>, every tensor is dequantized to float32 exactly as ggml does, and the
/// exporter's layout changes are undone (llama.cpp's q/k row permutation, Hugging Face names), so
/// the engine's inference path runs on the very numbers Ollama and llama.cpp run on.
/// </summary>
public sealed class GgufModel
{
    /// <summary>The architectures the engine runs from a GGUF file.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["llama", "qwen2", "qwen3", "gemma3"];

    private GgufModel(GgufFile file, LlamaWeights weights)
    {
        File = file;
        Weights = weights;
    }

    /// <summary>The parsed header (metadata, tensor table).</summary>
    public GgufFile File { get; }

    /// <summary>The architecture.</summary>
    public ModelConfig Config => Weights.Config;

    /// <summary>All weights, dequantized to float32 in Hugging Face's [out, in] layout.</summary>
    public LlamaWeights Weights { get; }

    /// <summary><c>tokenizer.chat_template</c>, or null when the file has none.</summary>
    public string? ChatTemplate => File.Get("tokenizer.chat_template")?.Value as string;

    /// <summary>The tensor types the file holds, e.g. {Q8_0: 14, F32: 5}.</summary>
    public IReadOnlyDictionary<GgmlType, int> TensorTypes =>
        File.Tensors.GroupBy(t => t.Type).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Reads <paramref name="path"/>: FT4040 for an architecture or tensor type the engine does not run, FT4041 for a missing or misshapen tensor.</summary>
    public static GgufModel Load(string path)
    {
        var file = GgufReader.Read(path);
        var config = ReadConfig(file, path);
        return new GgufModel(file, ReadWeights(file, config, path));
    }

    private static string Arch(GgufFile f, string path) =>
        f.Get("general.architecture")?.Value as string
        ?? throw new FineTuneException("FT4040", "The GGUF file has no general.architecture.", path);

    private static ModelConfig ReadConfig(GgufFile f, string path)
    {
        var arch = Arch(f, path);
        if (!Architectures.Contains(arch))
            throw new FineTuneException("FT4040",
                $"The GGUF architecture '{arch}' is not one the engine runs ({string.Join(", ", Architectures)}).", path);
        int Int(string key) => (int)(f.Get($"{arch}.{key}")?.AsUInt64()
            ?? throw new FineTuneException("FT4040", $"The GGUF file has no {arch}.{key}.", path));
        int? OptInt(string key) => f.Get($"{arch}.{key}")?.AsUInt64() is { } v ? (int)v : null;
        double? OptFloat(string key) => f.Get($"{arch}.{key}")?.Value switch
        {
            float x => x,
            double x => x,
            _ => null,
        };
        int? Id(string key) => f.Get($"tokenizer.ggml.{key}")?.AsUInt64() is { } v ? (int)v : null;

        var hidden = Int("embedding_length");
        var heads = Int("attention.head_count");
        var layers = Int("block_count");
        var headDim = OptInt("attention.key_length") ?? hidden / heads;
        var embedding = f.Tensor("token_embd.weight")
            ?? throw new FineTuneException("FT4041", "The GGUF file has no token_embd.weight.", path);
        var vocab = OptInt("vocab_size") ?? (int)embedding.Shape[1];
        var config = new ModelConfig
        {
            ModelType = arch == "gemma3" ? "gemma3_text" : arch,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = Int("feed_forward_length"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = OptInt("attention.head_count_kv") ?? heads,
            HeadDim = headDim,
            RmsNormEps = OptFloat("attention.layer_norm_rms_epsilon") ?? 1e-6,
            RopeTheta = OptFloat("rope.freq_base") ?? 10000,
            RopeFrequencyFactors = f.Tensor("rope_freqs.weight") is { } rf ? f.ReadTensorAsFloat32(rf) : null,
            TieWordEmbeddings = f.Tensor("output.weight") is null,
            AttentionBias = f.Tensor("blk.0.attn_q.bias") is not null,
            OutputBias = f.Tensor("blk.0.attn_output.bias") is not null,
            QkNorm = f.Tensor("blk.0.attn_q_norm.weight") is not null,
            MaxPositionEmbeddings = OptInt("context_length") ?? 2048,
            BosTokenId = Id("bos_token_id"),
            EosTokenId = Id("eos_token_id"),
        };
        if (arch == "gemma3")
        {
            // What llama.cpp's gemma3 graph does: scaled embeddings, (1 + w) norms stored as factors,
            // sandwich norms, GeGLU, an attention scale from head_dim (hidden/heads for 62 layers).
            var pattern = f.Get($"{arch}.attention.sliding_window_pattern")?.Value as Array;
            config = config with
            {
                EmbeddingScale = (float)Math.Sqrt(hidden),
                NormWeightOffset = true,
                SandwichNorms = true,
                Activation = GateActivation.GeluTanh,
                QueryPreAttnScalar = layers == 62 ? (double)hidden / heads : headDim,
                SlidingWindow = OptInt("attention.sliding_window"),
                SlidingLayers = pattern?.Cast<bool>().ToArray(),
                RopeLocalTheta = OptFloat("rope.freq_base_swa") ?? 10_000,
                LinearRopeFactor = f.Get($"{arch}.rope.scaling.type")?.Value as string == "linear" ? OptFloat("rope.scaling.factor") : null,
            };
        }
        if (config.NumKvHeads <= 0 || config.NumHeads % config.NumKvHeads != 0 || config.HeadDim % 2 != 0
            || config.SlidingLayers is { } s && s.Count != layers)
            throw new FineTuneException("FT4040", $"The GGUF hyper-parameters do not describe a model the engine runs (heads {heads}, kv heads {config.NumKvHeads}, head dim {headDim}).", path);
        return config;
    }

    private static LlamaWeights ReadWeights(GgufFile f, ModelConfig c, string path)
    {
        var llamaPermuted = Arch(f, path) == "llama";
        float[] Read(string name, params long[] hfShape)
        {
            var t = f.Tensor(name) ?? throw new FineTuneException("FT4041", $"The GGUF file has no tensor '{name}'.", path);
            var ggmlShape = hfShape.Reverse().ToArray();
            if (!t.Shape.SequenceEqual(ggmlShape))
                throw new FineTuneException("FT4041",
                    $"Tensor '{name}' has shape [{string.Join(", ", t.Shape)}], the file's hyper-parameters imply [{string.Join(", ", ggmlShape)}].", path);
            if (!Dequantizer.SupportedTypes.Contains(t.Type))
                throw new FineTuneException("FT4040",
                    $"Tensor '{name}' is {t.Type}; the engine reads {string.Join(", ", Dequantizer.SupportedTypes)} (the types 'finetune export' writes).", path);
            return Dequantizer.Dequantize(t.Type, f.ReadTensorBytes(t), t.ElementCount);
        }
        float[] Linear(int l, Projection p)
        {
            var data = Read($"blk.{l}.{GgufName(p)}.weight", p.OutFeatures(c), p.InFeatures(c));
            // The exporter permuted llama's q/k rows into llama.cpp's interleaved rotary order; the engine rotates halves.
            if (llamaPermuted && p is Projection.Q) return UnpermuteRows(data, c.QDim, c.NumHeads);
            if (llamaPermuted && p is Projection.K) return UnpermuteRows(data, c.KvDim, c.NumKvHeads);
            return data;
        }
        float[]? Bias(int l, Projection p)
        {
            if (!LlamaTensorLayout.HasBias(c, p)) return null;
            var data = Read($"blk.{l}.{GgufName(p)}.bias", p.OutFeatures(c));
            if (llamaPermuted && p is Projection.Q) return UnpermuteRows(data, c.QDim, c.NumHeads);
            if (llamaPermuted && p is Projection.K) return UnpermuteRows(data, c.KvDim, c.NumKvHeads);
            return data;
        }

        var layers = new LayerWeights[c.NumLayers];
        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = l;
            layers[l] = new LayerWeights
            {
                InputNorm = Read($"blk.{l}.attn_norm.weight", c.HiddenSize),
                PostNorm = Read($"blk.{l}.ffn_norm.weight", c.HiddenSize),
                AttentionOutNorm = c.SandwichNorms ? Read($"blk.{l}.post_attention_norm.weight", c.HiddenSize) : null,
                MlpOutNorm = c.SandwichNorms ? Read($"blk.{l}.post_ffw_norm.weight", c.HiddenSize) : null,
                Linear = Projections.All.Select(p => Linear(layer, p)).ToArray(),
                Bias = Projections.All.Select(p => Bias(layer, p)).ToArray(),
                QNorm = c.QkNorm ? Read($"blk.{l}.attn_q_norm.weight", c.HeadDim) : null,
                KNorm = c.QkNorm ? Read($"blk.{l}.attn_k_norm.weight", c.HeadDim) : null,
            };
        }
        var embedding = Read("token_embd.weight", c.VocabSize, c.HiddenSize);
        return new LlamaWeights
        {
            Config = c,
            Embedding = embedding,
            Layers = layers,
            FinalNorm = Read("output_norm.weight", c.HiddenSize),
            LmHead = c.TieWordEmbeddings ? embedding : Read("output.weight", c.VocabSize, c.HiddenSize),
        };
    }

    private static string GgufName(Projection p) => p switch
    {
        Projection.Q => "attn_q",
        Projection.K => "attn_k",
        Projection.V => "attn_v",
        Projection.O => "attn_output",
        Projection.Gate => "ffn_gate",
        Projection.Up => "ffn_up",
        _ => "ffn_down",
    };

    /// <summary>The inverse of <see cref="Export.HfTensorNames.PermuteRows"/>: row (2j + i) of each head goes back to (i·d/2 + j).</summary>
    public static float[] UnpermuteRows(float[] w, int rows, int heads)
    {
        var cols = w.Length / rows;
        var headDim = rows / heads;
        var half = headDim / 2;
        var result = new float[w.Length];
        for (var h = 0; h < heads; h++)
            for (var i = 0; i < 2; i++)
                for (var j = 0; j < half; j++)
                    Array.Copy(w, (long)(h * headDim + 2 * j + i) * cols, result, (long)(h * headDim + i * half + j) * cols, cols);
        return result;
    }

    /// <summary>A one-line description for logs: architecture, size and tensor types.</summary>
    public string Describe() =>
        $"{Arch(File, File.Path)}, {Config.NumLayers} layers × {Config.HiddenSize}, " +
        string.Join(", ", TensorTypes.OrderByDescending(kv => kv.Value).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Value} {kv.Key}")));
}
