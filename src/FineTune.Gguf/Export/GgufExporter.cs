using FineTune.Core.Diagnostics;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Tokenizers;

namespace FineTune.Gguf.Export;

/// <summary>
/// Turns a Hugging Face model folder (plus an optional LoRA adapter) into a GGUF file llama.cpp and
/// Ollama load: merged fp32 weights, llama.cpp's names and q/k layout, hyper-parameters, the
/// tokenizer and chat template, each tensor quantized as llama.cpp's quantizer would. Tensors are
/// read, merged and quantized one at a time while the file is written.
/// </summary>
public static class GgufExporter
{
    /// <summary>GGML_QNT_VERSION, recorded in quantized files.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>Writes the GGUF file described by <paramref name="options"/> and returns its per-tensor types.</summary>
    public static IReadOnlyDictionary<string, GgmlType> Export(ExportOptions options, CancellationToken cancellationToken = default)
    {
        var config = ModelConfig.Load(options.BaseModel);
        GemmaGguf.CheckRepresentable(config, options.BaseModel);
        var tokenizer = Tokenizer.Load(options.BaseModel);
        var adapter = options.Adapter is null ? null : LoraAdapter.Load(options.Adapter, config);
        using var weights = ModelWeights.Open(options.BaseModel);
        var arch = HfTensorNames.Architecture(config);

        var mapped = weights.Names.Select(n => HfTensorNames.Map(n, config)).OfType<MappedTensor>().ToList();
        if (mapped.All(t => t.GgufName != "token_embd.weight"))
            throw new FineTuneException("FT4010", "the model has no model.embed_tokens.weight", options.BaseModel);
        if (!config.TieWordEmbeddings && mapped.All(t => t.GgufName != "output.weight"))
            throw new FineTuneException("FT4010", "the model has no lm_head.weight and tie_word_embeddings is false", options.BaseModel);

        var shapes = mapped.ToDictionary(t => t.GgufName, t => GgmlShape(weights.Shape(t.HfName)));
        var ropeFreqs = config.RopeScaling is { } rs ? Llama3RopeFactors(config, rs) : null;
        if (ropeFreqs is not null) shapes["rope_freqs.weight"] = [ropeFreqs.Length];
        var facts = new ModelFacts(config.NumLayers, config.NumHeads, config.NumKvHeads,
            Is70B: config.NumLayers == 80 && (arch == "qwen2" || config.NumHeads != config.NumKvHeads));
        var types = TensorTypePolicy.Choose(shapes.Select(kv => (kv.Key, kv.Value)), options.Type, facts);

        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of(arch));
        w.Set("general.type", GgufValue.Of("model"));
        w.Set("general.name", GgufValue.Of(options.Name));
        w.Set("general.version", GgufValue.Of(options.Version));
        w.Set("general.file_type", GgufValue.Of((uint)options.Type));
        if (GgmlTypeInfo.IsQuantized(FileTypes.DefaultTensorType(options.Type)))
            w.Set("general.quantization_version", GgufValue.Of(QuantizationVersion));
        WriteHyperParameters(w, arch, config);
        if (config.SlidingLayers is not null) GemmaGguf.WriteHyperParameters(w, arch, config);
        TokenizerMetadata.Write(w, tokenizer, config.VocabSize, options.ChatTemplate);

        // llama.cpp's loader order: non-block tensors first, then blocks in order.
        foreach (var t in mapped.OrderBy(t => t.Layer).ThenBy(t => t.GgufName, StringComparer.Ordinal))
        {
            var tensor = t;
            var type = types[t.GgufName];
            w.AddTensor(t.GgufName, shapes[t.GgufName], type, () =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                var data = weights.ReadF32(tensor.HfName);
                var shape = weights.Shape(tensor.HfName);
                if (adapter is not null && tensor.Projection is { } p && adapter.A(tensor.Layer, p) is { } a && adapter.B(tensor.Layer, p) is { } b)
                    LoraMerge.AddInPlace(data, (int)shape[0], (int)shape[1], b, a, adapter.Settings.Scale);
                if (options.TestWeightScale != 1 && (tensor.Projection is not null || tensor.GgufName == "output.weight"))
                    for (var i = 0; i < data.Length; i++) data[i] *= options.TestWeightScale;
                if (tensor.PermuteHeads > 0) data = HfTensorNames.PermuteRows(data, (int)shape[0], tensor.PermuteHeads);
                // llama.cpp multiplies by the norm weight itself; Gemma stores it as an offset from one (as convert_hf_to_gguf adds).
                if (config.NormWeightOffset && tensor.HfName.EndsWith("norm.weight", StringComparison.Ordinal))
                    for (var i = 0; i < data.Length; i++) data[i] += 1f;
                return Quantizer.Quantize(type, data, shape[^1], options.Threads);
            });
        }
        if (ropeFreqs is not null)
            w.AddTensor("rope_freqs.weight", [ropeFreqs.Length], GgmlType.F32, () => Quantizer.Quantize(GgmlType.F32, ropeFreqs, ropeFreqs.Length));

        w.Write(options.Output);
        return types;
    }

    /// <summary>PyTorch shape [out, in] → ggml shape [in, out].</summary>
    private static long[] GgmlShape(long[] torchShape) => torchShape.Reverse().ToArray();

    private static void WriteHyperParameters(GgufWriter w, string arch, ModelConfig c)
    {
        w.Set($"{arch}.context_length", GgufValue.Of((uint)c.MaxPositionEmbeddings));
        w.Set($"{arch}.embedding_length", GgufValue.Of((uint)c.HiddenSize));
        w.Set($"{arch}.block_count", GgufValue.Of((uint)c.NumLayers));
        w.Set($"{arch}.feed_forward_length", GgufValue.Of((uint)c.IntermediateSize));
        w.Set($"{arch}.attention.head_count", GgufValue.Of((uint)c.NumHeads));
        w.Set($"{arch}.attention.head_count_kv", GgufValue.Of((uint)c.NumKvHeads));
        w.Set($"{arch}.attention.key_length", GgufValue.Of((uint)c.HeadDim));
        w.Set($"{arch}.attention.value_length", GgufValue.Of((uint)c.HeadDim));
        w.Set($"{arch}.rope.dimension_count", GgufValue.Of((uint)c.HeadDim));
        w.Set($"{arch}.rope.freq_base", GgufValue.Of((float)c.RopeTheta));
        w.Set($"{arch}.attention.layer_norm_rms_epsilon", GgufValue.Of((float)c.RmsNormEps));
        w.Set($"{arch}.vocab_size", GgufValue.Of((uint)c.VocabSize));
    }

    /// <summary>Llama 3.1 rope scaling as llama.cpp takes it: a per-frequency divisor tensor <c>rope_freqs.weight</c>.</summary>
    private static float[] Llama3RopeFactors(ModelConfig c, Llama3RopeScaling s)
    {
        var dim = c.HeadDim;
        var lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        var highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        var factors = new float[dim / 2];
        for (var i = 0; i < dim / 2; i++)
        {
            var freq = 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / dim);
            var wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) factors[i] = 1;
            else if (wavelen > lowWavelen) factors[i] = (float)s.Factor;
            else
            {
                var smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                factors[i] = (float)(1 / ((1 - smooth) / s.Factor + smooth));
            }
        }
        return factors;
    }
}
