using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;

namespace FineTune.Gguf.Tests;

/// <summary>
/// Quantizing an F16 or BF16 model straight from its mapped file (each chunk of rows converted just
/// before it is quantized) gives llama.cpp's bytes. Oracles: <c>llama_model_quantize</c> on the same
/// file, and ggml's own F16 to F32 conversion for every one of the 65,536 halves.
/// </summary>
public sealed unsafe class StoredRowsQuantizeTests
{
    public static TheoryData<GgmlType, FileType> Cases => new()
    {
        { GgmlType.F16, FileType.Q8_0 },
        { GgmlType.F16, FileType.Q4_K_M },
        { GgmlType.BF16, FileType.Q8_0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_mapped_model_quantizes_to_the_bytes_of_llama_model_quantize(GgmlType stored, FileType fileType)
    {
        LlamaNative.EnsureLoaded();
        using var tmp = new TempDir();
        var model = new SyntheticLlama { Hidden = 256, Ffn = 512, Layers = 4, MatrixType = stored, AwkwardBlocks = true };
        var input = model.Write(tmp.File("in.gguf"));
        var output = tmp.File("ref.gguf");
        var p = LlamaNative.llama_model_quantize_default_params();
        p.NThread = 2;
        p.FType = (int)fileType;
        Assert.Equal(0u, LlamaNative.llama_model_quantize(input, output, &p));

        var file = GgufReader.Read(input);
        var reference = GgufReader.Read(output);
        var types = TensorTypePolicy.Choose(file.Tensors.Select(t => (t.Name, t.Shape)), fileType, new ModelFacts(model.Layers, model.Heads, model.KvHeads));
        using var data = file.MapData();
        Assert.Contains(file.Tensors, t => t.Type == stored);
        foreach (var t in file.Tensors)
        {
            var theirs = reference.Tensor(t.Name)!;
            Assert.Equal(theirs.Type, types[t.Name]);
            var ours = Quantizer.Quantize(types[t.Name], data.TensorBytes(t), t.Type, t.Shape[0], threads: 3);
            var expected = reference.ReadTensorBytes(theirs);
            if (!ours.AsSpan().SequenceEqual(expected))
                Assert.Fail($"{t.Name} ({t.Type} -> {theirs.Type}): bytes differ first at {ours.AsSpan().CommonPrefixLength(expected)} of {expected.Length}");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)] // not a multiple of a vector: the tail and misaligned loads
    public void Every_half_converts_to_the_float_ggml_computes(int offset)
    {
        var halves = new byte[2 * (65536 + offset)];
        for (var i = 0; i < 65536; i++) BitConverter.TryWriteBytes(halves.AsSpan(2 * (i + offset)), (ushort)i);
        var theirs = GgmlTypeTraits.ToFloat(1, "f16", 1, 2, halves, 65536 + offset);
        var ours = Dequantizer.Dequantize(GgmlType.F16, halves, 65536 + offset);
        for (var i = 0; i < ours.Length; i++)
        {
            if (float.IsNaN(theirs[i]))
                Assert.True(float.IsNaN(ours[i]), $"half 0x{i - offset:X4}: {ours[i]:R}, ggml gives NaN");
            else if (BitConverter.SingleToInt32Bits(ours[i]) != BitConverter.SingleToInt32Bits(theirs[i]))
                Assert.Fail($"half 0x{i - offset:X4}: {ours[i]:R}, ggml gives {theirs[i]:R}");
        }
    }

    [Fact]
    public void A_source_that_is_not_whole_rows_or_not_a_float_type_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Quantizer.Quantize(GgmlType.Q8_0, new byte[2 * 48], GgmlType.F16, 32));
        Assert.Throws<ArgumentException>(() => Quantizer.Quantize(GgmlType.Q8_0, new byte[34], GgmlType.Q8_0, 32));
    }
}
