using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Inference;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Tests.Inference;

/// <summary>
/// The KV-cached decoder against the training graph's full forward pass (the oracle: it recomputes
/// every position from scratch, and is itself checked by finite differences, PyTorch and llama.cpp).
/// </summary>
public sealed class DecoderSessionTests
{
    // Both paths run the same float operations in the same order (today they agree bit for bit); what
    // may differ with other shapes or kernels is the summation order inside a matrix product (the CPU kernel blocks 4 rows of A at a time, so a one-row call
    // takes its remainder path). For dot products of length ≤ 24 in F32 that is a few ulp of the
    // operands' magnitude per product, compounded over 2 layers: 1e-4 relative to the largest logit
    // leaves two orders of magnitude of headroom while a wrong position, mask or cache row moves
    // logits by O(1) with these std-0.3 weights.
    private const float RelativeTolerance = 1e-4f;
    private static readonly int[] Tokens = [3, 17, 4, 1, 45, 9, 26, 5, 35, 8, 9, 7, 30, 2];

    public static TheoryData<string, bool, bool> Architectures => new()
    {
        { "llama", false, false },
        { "llama", true, true },   // biases, tied embeddings
        { "qwen2", false, false }, // q/k/v bias
        { "qwen3", false, false }, // q/k norm
        { "gemma3_text", false, true }, // sliding window (3 < 14 tokens), two RoPE bases, sandwich norms, GeGLU
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Cached_logits_equal_full_recompute_at_every_position(string type, bool bias, bool tie)
    {
        using var dir = new TempDir();
        var (weights, adapter) = Load(dir, TestModels.Config(type, bias, tie));
        var full = FullLogits(weights, adapter, Tokens);
        var session = new LlamaDecoder(weights, adapter, new CpuBackend(2)).CreateSession(initialCapacity: 4);
        var vocab = weights.Config.VocabSize;
        for (var t = 0; t < Tokens.Length; t++)
            AssertClose(full.AsSpan(t * vocab, vocab), session.Append([Tokens[t]]), $"{type} position {t}");
        Assert.Equal(Tokens.Length, session.Length);
    }

    [Fact]
    public void A_prompt_fed_at_once_or_in_chunks_and_a_truncated_cache_give_the_same_logits()
    {
        using var dir = new TempDir();
        var (weights, adapter) = Load(dir, TestModels.Config("qwen3"));
        var full = FullLogits(weights, adapter, Tokens);
        var vocab = weights.Config.VocabSize;
        var decoder = new LlamaDecoder(weights, adapter, new CpuBackend(2));
        var last = full.AsSpan((Tokens.Length - 1) * vocab, vocab);

        var whole = decoder.CreateSession();
        AssertClose(last, whole.Append(Tokens), "whole prompt");

        var chunks = decoder.CreateSession();
        chunks.Append(Tokens.AsSpan(0, 5));
        chunks.Append(Tokens.AsSpan(5, 6));
        AssertClose(last, chunks.Append(Tokens.AsSpan(11)), "three chunks");

        // Cut back to 6 tokens and continue with different ones: rows 0..5 stay valid.
        int[] other = [.. Tokens[..6], 11, 12, 13];
        var otherFull = FullLogits(weights, adapter, other);
        chunks.Truncate(6);
        AssertClose(otherFull.AsSpan((other.Length - 1) * vocab, vocab), chunks.Append(other.AsSpan(6)), "after truncation");
    }

    [Fact]
    public void Greedy_generation_picks_the_same_tokens_as_full_recompute()
    {
        using var dir = new TempDir();
        var (weights, adapter) = Load(dir, TestModels.Config());
        var vocab = weights.Config.VocabSize;
        var prompt = Tokens[..6];

        var reference = new List<int>(prompt);
        for (var i = 0; i < 24; i++)
        {
            var logits = FullLogits(weights, adapter, [.. reference]);
            reference.Add(ArgMax(logits.AsSpan((reference.Count - 1) * vocab, vocab)));
        }

        var session = new LlamaDecoder(weights, adapter, new CpuBackend(2)).CreateSession();
        var cached = new List<int>(prompt);
        var next = ArgMax(session.Append(prompt));
        for (var i = 0; i < 24; i++)
        {
            cached.Add(next);
            next = ArgMax(session.Append([next]));
        }
        Assert.Equal(reference, cached);
        Assert.True(reference.Skip(prompt.Length).Distinct().Count() > 1, "degenerate generation would not test much");
    }

    [Fact]
    public void Without_the_adapter_the_decoder_is_the_base_model()
    {
        using var dir = new TempDir();
        var (weights, adapter) = Load(dir, TestModels.Config());
        var vocab = weights.Config.VocabSize;
        var baseLogits = LlamaModel.Load(dir["m"]).Logits(Tokens);
        var tunedLogits = FullLogits(weights, adapter, Tokens);
        var before = new LlamaDecoder(weights, adapter, new CpuBackend(2)).WithoutAdapter().CreateSession().Append(Tokens);
        var last = (Tokens.Length - 1) * vocab;
        AssertClose(baseLogits.AsSpan(last, vocab), before, "base");
        // The adapter does change the answer, so the comparison above is not trivially true.
        Assert.True(MaxAbsDiff(tunedLogits.AsSpan(last, vocab), before) > 0.1f);
    }

    /// <summary>A random model and a LoRA adapter on every projection with non-zero B (PEFT's init would make it a no-op).</summary>
    private static (LlamaWeights Weights, LoraAdapter Adapter) Load(TempDir dir, ModelConfig config)
    {
        TestModels.WriteModel(dir["m"], config);
        var weights = LlamaWeights.Load(dir["m"]);
        var adapter = new LoraAdapter(weights.Config, new LoraSettings(4, 8, 0, false, Projections.All));
        adapter.Initialize(7);
        var rng = new DeterministicRandom(11);
        foreach (var t in adapter.Tensors.Where(t => t.Name.EndsWith(".lora_B.weight", StringComparison.Ordinal)))
            for (var i = 0; i < t.Value.Length; i++) t.Value[i] = (float)(rng.NextGaussian() * 0.1);
        return (weights, adapter);
    }

    private static float[] FullLogits(LlamaWeights weights, LoraAdapter? adapter, int[] ids) =>
        new LlamaGraph(weights, adapter, new CpuBackend(2)).Logits(PackedBatch.ForInference(ids));

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string where)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = 0f;
        foreach (var v in expected) scale = Math.Max(scale, Math.Abs(v));
        var diff = MaxAbsDiff(expected, actual);
        Assert.True(diff <= RelativeTolerance * scale, $"{where}: max |difference| {diff:E3} exceeds {RelativeTolerance:E0} × {scale:F3}");
    }

    private static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var d = 0f;
        for (var i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs(a[i] - b[i]));
        return d;
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        var best = 0;
        for (var i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
