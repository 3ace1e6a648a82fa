using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;

namespace FineTune.Gguf.Tests;

/// <summary>
/// Oracle: llama.cpp's llama_model_quantize on the same F32 GGUF. Every tensor's type and every byte
/// of its data must match what our policy and quantizers produce.
/// </summary>
public sealed unsafe class QuantizeVsLlamaCppTests
{
    public static TheoryData<FileType, int, bool, bool> Cases => new()
    {
        { FileType.Q8_0, 256, false, false },
        { FileType.Q4_K_M, 256, false, true },
        { FileType.Q5_K_M, 256, false, true },
        { FileType.Q6_K, 256, false, true },
        { FileType.Q4_0, 256, false, false },
        { FileType.Q4_K_M, 256, false, false },
        { FileType.Q5_K_M, 256, false, false },
        { FileType.Q6_K, 256, false, false },
        { FileType.F16, 256, false, false },
        { FileType.BF16, 256, false, false },
        { FileType.Q4_K_M, 256, true, false },   // tied embeddings: token_embd takes the output rule
        { FileType.Q4_K_M, 64, false, false },   // rows of 64: K-quant fallbacks to Q5_0 / Q5_1 / Q8_0
        { FileType.Q5_K_M, 64, true, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_llama_model_quantize(FileType fileType, int hidden, bool tied, bool awkwardBlocks)
    {
        LlamaNative.EnsureLoaded();
        using var tmp = new TempDir();
        var model = new SyntheticLlama { Hidden = hidden, Ffn = hidden * 2, Layers = 8, TiedEmbeddings = tied, AwkwardBlocks = awkwardBlocks };
        var input = model.Write(tmp.File("f32.gguf"));
        var output = tmp.File("ref.gguf");

        var p = LlamaNative.llama_model_quantize_default_params();
        p.NThread = 2;
        p.FType = (int)fileType;
        Assert.Equal(0u, LlamaNative.llama_model_quantize(input, output, &p));

        var reference = GgufReader.Read(output);
        Assert.Equal((uint)fileType, reference.Get("general.file_type")!.AsUInt64());
        var facts = new ModelFacts(model.Layers, model.Heads, model.KvHeads);
        var types = TensorTypePolicy.Choose(model.Tensors.Select(t => (t.Key, t.Value.Shape)), fileType, facts);

        Assert.Equal(model.Tensors.Count, reference.Tensors.Count);
        foreach (var refTensor in reference.Tensors)
        {
            var (shape, data) = model.Tensors[refTensor.Name];
            Assert.True(refTensor.Type == types[refTensor.Name], $"{refTensor.Name}: llama.cpp chose {refTensor.Type}, we chose {types[refTensor.Name]}");
            var ours = Quantizer.Quantize(types[refTensor.Name], data, shape[0], threads: 2);
            var theirs = reference.ReadTensorBytes(refTensor);
            if (!ours.AsSpan().SequenceEqual(theirs))
            {
                var at = ours.AsSpan().CommonPrefixLength(theirs);
                Assert.Fail($"{refTensor.Name} ({refTensor.Type}): bytes differ first at {at} of {theirs.Length}");
            }
        }
    }

    [Fact]
    public void Quantization_does_not_depend_on_thread_count()
    {
        var data = new float[256 * 300];
        var rng = new Random(7);
        for (var i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() - 0.5);
        foreach (var type in new[] { GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0 })
            Assert.Equal(Quantizer.Quantize(type, data, 256, threads: 1), Quantizer.Quantize(type, data, 256, threads: 4));
    }
}
