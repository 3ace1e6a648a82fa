using FineTune.Gguf.Format;

namespace FineTune.Gguf.Tests;

/// <summary>
/// A llama-architecture GGUF with random F32 weights, written by our writer, as input for
/// llama.cpp's quantizer. Values are Gaussian-ish with a few outliers so the quantizers' search
/// paths (min clamps, outlier scales, all-zero blocks) are exercised.
/// </summary>
internal sealed class SyntheticLlama
{
    public int Hidden { get; init; } = 256;
    public int Ffn { get; init; } = 512;
    public int Layers { get; init; } = 8;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int Vocab { get; init; } = 320;
    public bool TiedEmbeddings { get; init; }
    public int Seed { get; init; } = 1234;

    /// <summary>How matrices are stored (F32, F16 or BF16); norms stay F32 as convert_hf_to_gguf writes them.</summary>
    public GgmlType MatrixType { get; init; } = GgmlType.F32;

    /// <summary>Further metadata (e.g. a tokenizer), written before the tensors.</summary>
    public Action<GgufWriter>? Metadata { get; init; }

    /// <summary>
    /// Also give every 7th super-block awkward 32-value sub-blocks (constant, all positive, one
    /// non-zero value, negative zeros, subnormal-sized values), where the K-quant searches take
    /// their early exits and clamps lane by lane.
    /// </summary>
    public bool AwkwardBlocks { get; init; }

    public Dictionary<string, (long[] Shape, float[] Data)> Tensors { get; } = new(StringComparer.Ordinal);

    private static void MakeAwkward(Span<float> block, Random rng)
    {
        block[..32].Fill(0.0125f);                                                             // max == min
        for (var i = 32; i < 64; i++) block[i] = 0.01f + 0.03f * (float)rng.NextDouble();      // min > 0 clamps to 0
        block.Slice(64, 32).Clear();
        block[64 + rng.Next(32)] = -0.2f;                                                      // one value
        block.Slice(96, 32).Fill(-0f);                                                         // negative zeros
        for (var i = 128; i < 160; i++) block[i] = (float)((rng.NextDouble() - 0.5) * 1e-36);  // tiny
        for (var i = 160; i < 192; i++) block[i] = i % 2 == 0 ? -0f : 0.001f;
    }

    public string Write(string path)
    {
        var rng = new Random(Seed);
        var headDim = Hidden / Heads;
        void Add(string name, params long[] shape)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var data = new float[n];
            var isNorm = shape.Length == 1;
            for (var i = 0; i < n; i++)
            {
                if (isNorm) { data[i] = 1f + 0.1f * (float)(rng.NextDouble() - 0.5); continue; }
                // Sum of uniforms ≈ normal; every 97th value is an outlier, one block in 50 is all zero.
                var v = (float)((rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 0.05);
                if (rng.Next(97) == 0) v *= 12;
                data[i] = v;
            }
            if (!isNorm)
                for (var b = 0; b + 256 <= n; b += 256 * 50) Array.Clear(data, b, 256);
            if (!isNorm && AwkwardBlocks)
                for (var b = 256 * 3; b + 256 <= n; b += 256 * 7) MakeAwkward(data.AsSpan(b, 256), rng);
            Tensors[name] = (shape, data);
        }
        Add("token_embd.weight", Hidden, Vocab);
        Add("output_norm.weight", Hidden);
        if (!TiedEmbeddings) Add("output.weight", Hidden, Vocab);
        for (var l = 0; l < Layers; l++)
        {
            Add($"blk.{l}.attn_norm.weight", Hidden);
            Add($"blk.{l}.attn_q.weight", Hidden, Heads * headDim);
            Add($"blk.{l}.attn_k.weight", Hidden, KvHeads * headDim);
            Add($"blk.{l}.attn_v.weight", Hidden, KvHeads * headDim);
            Add($"blk.{l}.attn_output.weight", Heads * headDim, Hidden);
            Add($"blk.{l}.ffn_norm.weight", Hidden);
            Add($"blk.{l}.ffn_gate.weight", Hidden, Ffn);
            Add($"blk.{l}.ffn_up.weight", Hidden, Ffn);
            Add($"blk.{l}.ffn_down.weight", Ffn, Hidden);
        }

        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of("llama"));
        w.Set("general.name", GgufValue.Of("synthetic"));
        w.Set("general.file_type", GgufValue.Of(0u));
        w.Set("llama.context_length", GgufValue.Of(256u));
        w.Set("llama.embedding_length", GgufValue.Of((uint)Hidden));
        w.Set("llama.block_count", GgufValue.Of((uint)Layers));
        w.Set("llama.feed_forward_length", GgufValue.Of((uint)Ffn));
        w.Set("llama.attention.head_count", GgufValue.Of((uint)Heads));
        w.Set("llama.attention.head_count_kv", GgufValue.Of((uint)KvHeads));
        w.Set("llama.rope.dimension_count", GgufValue.Of((uint)headDim));
        w.Set("llama.attention.layer_norm_rms_epsilon", GgufValue.Of(1e-5f));
        w.Set("llama.vocab_size", GgufValue.Of((uint)Vocab));
        Metadata?.Invoke(w);
        foreach (var (name, (shape, data)) in Tensors)
        {
            var type = shape.Length == 1 ? GgmlType.F32 : MatrixType;
            var bytes = Quantization.Quantizer.Quantize(type, data, shape[0]);
            w.AddTensor(name, shape, type, () => bytes);
        }
        w.Write(path);
        return path;
    }
}
