using FineTune.Gguf.Format;

namespace FineTune.Gguf.Quantization;

/// <summary>Facts about the model that llama.cpp's per-tensor type choice depends on.</summary>
/// <param name="LayerCount">Number of transformer blocks.</param>
/// <param name="HeadCount">Attention heads.</param>
/// <param name="KvHeadCount">Key/value heads (GQA factor = heads / kv heads).</param>
/// <param name="Is70B">Whether llama.cpp classifies the model as 70B (it gives attn_v more bits there).</param>
public sealed record ModelFacts(int LayerCount, int HeadCount, int KvHeadCount, bool Is70B = false)
{
    /// <summary>Heads sharing one key/value head.</summary>
    public int Gqa => KvHeadCount > 0 ? HeadCount / KvHeadCount : 0;
}

/// <summary>
/// Picks each tensor's type for a file type the way llama.cpp's <c>llama_tensor_get_type</c> does for
/// dense llama-family models: which tensors may be quantized, the output/embedding rules, the extra
/// bits for attn_v and ffn_down in the first, last and every third layer (<c>use_more_bits</c>),
/// and the fallbacks when a row length is not a multiple of the block size.
/// </summary>
public static class TensorTypePolicy
{
    /// <summary>
    /// Types for every tensor, given names and ggml shapes. <paramref name="sourceType"/> is the type a
    /// tensor keeps when it is not quantized (llama.cpp keeps the input's type; our exporter writes F32).
    /// </summary>
    public static IReadOnlyDictionary<string, GgmlType> Choose(IEnumerable<(string Name, long[] Shape)> tensors, FileType fileType,
        ModelFacts facts, GgmlType sourceType = GgmlType.F32)
    {
        // llama.cpp walks tensors in its loader's order (non-block tensors, then by layer, then by
        // name); the attn_v and ffn_down counters depend on that order.
        var ordered = tensors.OrderBy(t => LayerOf(t.Name)).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        var defaultType = FileTypes.DefaultTensorType(fileType);
        var state = new State
        {
            AttnVCount = ordered.Count(t => Category(t.Name) == TensorCategory.AttentionV),
            HasTiedEmbeddings = ordered.All(t => Category(t.Name) != TensorCategory.Output),
        };
        var result = new Dictionary<string, GgmlType>(StringComparer.Ordinal);
        foreach (var (name, shape) in ordered)
        {
            if (!AllowsQuantization(name, shape))
            {
                result[name] = sourceType;
                continue;
            }
            var type = defaultType;
            if (GgmlTypeInfo.IsQuantized(defaultType))
            {
                type = Refine(state, type, name, shape, fileType, facts);
                type = Fallback(type, shape[0]);
            }
            result[name] = type;
        }
        return result;
    }

    private enum TensorCategory { TokenEmbd, AttentionQ, AttentionV, AttentionK, AttentionOutput, FfnUp, FfnGate, FfnDown, Output, Other }

    private sealed class State
    {
        public int AttnVCount;
        public int AttnVIndex;
        public int FfnDownIndex;
        public bool HasTiedEmbeddings;
    }

    private static int LayerOf(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) return -1;
        var end = name.IndexOf('.', 4);
        return end > 4 && int.TryParse(name.AsSpan(4, end - 4), out var layer) ? layer : -1;
    }

    private static TensorCategory Category(string name)
    {
        if (name == "output.weight") return TensorCategory.Output;
        if (name is "token_embd.weight" or "per_layer_token_embd.weight") return TensorCategory.TokenEmbd;
        if (name.Contains("attn_v.weight")) return TensorCategory.AttentionV;
        if (name.Contains("attn_k.weight")) return TensorCategory.AttentionK;
        if (name.Contains("attn_q.weight")) return TensorCategory.AttentionQ;
        if (name.Contains("attn_output.weight")) return TensorCategory.AttentionOutput;
        if (name.Contains("ffn_up")) return TensorCategory.FfnUp;
        if (name.Contains("ffn_gate")) return TensorCategory.FfnGate;
        if (name.Contains("ffn_down")) return TensorCategory.FfnDown;
        return TensorCategory.Other;
    }

    /// <summary>Only 2-D (or higher) weights are quantized, never norms (tensor_allows_quantization).</summary>
    private static bool AllowsQuantization(string name, long[] shape) =>
        shape.Length >= 2
        && name.EndsWith("weight", StringComparison.Ordinal)
        && !name.Contains("_norm.weight")
        && !name.Contains("ffn_gate_inp.weight");

    private static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    private static GgmlType Refine(State s, GgmlType type, string name, long[] shape, FileType ftype, ModelFacts facts)
    {
        var category = Category(name);
        if (category == TensorCategory.Output || (s.HasTiedEmbeddings && category == TensorCategory.TokenEmbd))
        {
            var blockSize = GgmlTypeInfo.Layout(type)!.Value.BlockSize;
            if (shape[0] % blockSize != 0) return GgmlType.Q8_0;
            return type != GgmlType.Q8_0 ? GgmlType.Q6_K : type;
        }
        switch (category)
        {
            case TensorCategory.AttentionV:
                if ((ftype is FileType.Q4_K_M or FileType.Q5_K_M) && UseMoreBits(s.AttnVIndex, s.AttnVCount)) type = GgmlType.Q6_K;
                if (facts.Is70B && type is GgmlType.Q3_K or GgmlType.Q4_K) type = GgmlType.Q5_K;
                s.AttnVIndex++;
                break;
            case TensorCategory.FfnDown:
                if ((ftype is FileType.Q4_K_M or FileType.Q5_K_M) && UseMoreBits(s.FfnDownIndex, facts.LayerCount)) type = GgmlType.Q6_K;
                s.FfnDownIndex++;
                break;
        }
        return type;
    }

    /// <summary>tensor_type_fallback: a compatible type when the row length is not a multiple of the block size.</summary>
    private static GgmlType Fallback(GgmlType type, long rowLength)
    {
        var block = GgmlTypeInfo.Layout(type)!.Value.BlockSize;
        if (rowLength % block == 0) return type;
        var fallback = type switch
        {
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => GgmlType.F16,
        };
        return rowLength % GgmlTypeInfo.Layout(fallback)!.Value.BlockSize == 0 ? fallback : GgmlType.F16;
    }
}
