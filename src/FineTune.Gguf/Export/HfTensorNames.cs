using System.Text.RegularExpressions;
using FineTune.Engine.Model;

namespace FineTune.Gguf.Export;

/// <summary>One Hugging Face weight and what the GGUF file calls it.</summary>
/// <param name="HfName">Name in model.safetensors.</param>
/// <param name="GgufName">Name llama.cpp expects.</param>
/// <param name="Layer">Block index, or -1 for a non-block tensor.</param>
/// <param name="Projection">The projection a LoRA adapter may target, or null.</param>
/// <param name="PermuteHeads">For llama/mistral q and k: the head count of llama.cpp's row permutation, else 0.</param>
public sealed record MappedTensor(string HfName, string GgufName, int Layer, Projection? Projection, int PermuteHeads);

/// <summary>
/// Maps Hugging Face llama/mistral/qwen2/qwen3 weight names to llama.cpp's GGUF names, and marks
/// the q/k weights that need llama.cpp's rotary-layout permutation (llama and mistral store q/k
/// rows in the "rotate half" order; llama.cpp's llama graph wants interleaved pairs).
/// </summary>
public static partial class HfTensorNames
{
    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerName();

    private static readonly Dictionary<string, (string Gguf, Projection? Proj)> LayerParts = new(StringComparer.Ordinal)
    {
        ["input_layernorm.weight"] = ("attn_norm.weight", null),
        ["post_attention_layernorm.weight"] = ("ffn_norm.weight", null),
        ["self_attn.q_proj.weight"] = ("attn_q.weight", Projection.Q),
        ["self_attn.k_proj.weight"] = ("attn_k.weight", Projection.K),
        ["self_attn.v_proj.weight"] = ("attn_v.weight", Projection.V),
        ["self_attn.o_proj.weight"] = ("attn_output.weight", Projection.O),
        ["self_attn.q_proj.bias"] = ("attn_q.bias", null),
        ["self_attn.k_proj.bias"] = ("attn_k.bias", null),
        ["self_attn.v_proj.bias"] = ("attn_v.bias", null),
        ["self_attn.o_proj.bias"] = ("attn_output.bias", null),
        ["self_attn.q_norm.weight"] = ("attn_q_norm.weight", null),
        ["self_attn.k_norm.weight"] = ("attn_k_norm.weight", null),
        ["mlp.gate_proj.weight"] = ("ffn_gate.weight", Projection.Gate),
        ["mlp.up_proj.weight"] = ("ffn_up.weight", Projection.Up),
        ["mlp.down_proj.weight"] = ("ffn_down.weight", Projection.Down),
    };

    // Gemma 3's four norms per layer: llama.cpp's ffn_norm is the norm before the MLP, which Gemma
    // calls pre_feedforward_layernorm; its post_attention_layernorm normalizes the attention output.
    private static readonly Dictionary<string, string> GemmaNorms = new(StringComparer.Ordinal)
    {
        ["post_attention_layernorm.weight"] = "post_attention_norm.weight",
        ["pre_feedforward_layernorm.weight"] = "ffn_norm.weight",
        ["post_feedforward_layernorm.weight"] = "post_ffw_norm.weight",
    };

    /// <summary>The GGUF architecture name for a <c>model_type</c>: mistral models run on llama.cpp's llama graph, gemma3_text on its gemma3 graph.</summary>
    public static string Architecture(ModelConfig config) => config.ModelType switch
    {
        "llama" or "mistral" => "llama",
        "gemma3_text" => "gemma3",
        _ => config.ModelType,
    };

    /// <summary>Maps a weight name; null for tensors GGUF does not carry (rotary inv_freq buffers, a tied lm_head).</summary>
    public static MappedTensor? Map(string hfName, ModelConfig config)
    {
        switch (hfName)
        {
            case "model.embed_tokens.weight": return new(hfName, "token_embd.weight", -1, null, 0);
            case "model.norm.weight": return new(hfName, "output_norm.weight", -1, null, 0);
            case "lm_head.weight": return config.TieWordEmbeddings ? null : new(hfName, "output.weight", -1, null, 0);
        }
        var m = LayerName().Match(hfName);
        if (!m.Success) return null;
        var layer = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        if (config.SandwichNorms && GemmaNorms.TryGetValue(m.Groups[2].Value, out var gemmaNorm))
            return new(hfName, $"blk.{layer}.{gemmaNorm}", layer, null, 0);
        if (!LayerParts.TryGetValue(m.Groups[2].Value, out var part)) return null;
        var permute = 0;
        if (Architecture(config) == "llama")
        {
            if (part.Gguf.StartsWith("attn_q.", StringComparison.Ordinal)) permute = config.NumHeads;
            else if (part.Gguf.StartsWith("attn_k.", StringComparison.Ordinal)) permute = config.NumKvHeads;
        }
        return new(hfName, $"blk.{layer}.{part.Gguf}", layer, part.Proj, permute);
    }

    /// <summary>
    /// llama.cpp's q/k permutation: within each head, rows (i·d/2 + j) move to (2j + i), turning
    /// the "first half / second half" rotary pairing into adjacent pairs.
    /// </summary>
    public static float[] PermuteRows(float[] w, int rows, int heads)
    {
        var cols = w.Length / rows;
        var headDim = rows / heads;
        var half = headDim / 2;
        var result = new float[w.Length];
        for (var h = 0; h < heads; h++)
            for (var i = 0; i < 2; i++)
                for (var j = 0; j < half; j++)
                {
                    var from = h * headDim + i * half + j;
                    var to = h * headDim + 2 * j + i;
                    Array.Copy(w, (long)from * cols, result, (long)to * cols, cols);
                }
        return result;
    }
}
