using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Tests.FourBit;

/// <summary>
/// NF4/FP4 quantization against bitsandbytes' reference algorithm executed by PyTorch 2.11
/// (eng/nf4/generate.py, run on the GPU machine; bnb-goldens.json holds float32 bit patterns): code
/// books, the 8-bit dynamic map, codes, absmax, double quantization and dequantized values, bit for bit.
/// </summary>
public class FourBitGoldenTests
{
    private static readonly Lazy<JsonObject> Goldens = new(() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "FourBit", "bnb-goldens.json")))!.AsObject());

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Goldens.Value["cases"]!.AsArray()) data.Add((string)c!["name"]!);
        return data;
    }

    [Fact]
    public void Code_books_equal_bitsandbytes()
    {
        Assert.Equal(Floats(Goldens.Value["nf4"]!), FourBitCodeBook.Values(FourBitType.Nf4).ToArray());
        Assert.Equal(Bits(Goldens.Value["fp4"]!), FourBitCodeBook.Values(FourBitType.Fp4).ToArray().Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void The_dynamic_map_equals_create_dynamic_map()
    {
        Assert.Equal(Bits(Goldens.Value["dynamic_map"]!), DynamicMap.Signed.Select(BitConverter.SingleToUInt32Bits));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Codes_absmax_and_dequantized_values_equal_the_reference(string name)
    {
        var c = Goldens.Value["cases"]!.AsArray().Single(x => (string)x!["name"]! == name)!;
        var type = (string)c["kind"]! == "nf4" ? FourBitType.Nf4 : FourBitType.Fp4;
        var input = Floats(c["input"]!);
        var doubleQuant = (bool)c["double_quant"]!;

        var single = FourBitQuantizer.Quantize(input, type, (int)c["blocksize"]!, doubleQuant: false);

        Assert.Equal(c["packed"]!.AsArray().Select(v => (byte)(int)v!), single.Packed);
        Assert.Equal(Bits(c["absmax"]!), single.Absmax!.Select(BitConverter.SingleToUInt32Bits));

        var output = new float[input.Length];
        if (!doubleQuant)
        {
            FourBitQuantizer.Dequantize(single, output);
            Assert.Equal(Bits(c["dequantized"]!), output.Select(BitConverter.SingleToUInt32Bits));
            return;
        }

        // Our offset is the exactly rounded mean; PyTorch's float32 mean may differ in the last bit.
        var torchOffset = BitConverter.UInt32BitsToSingle((uint)c["offset"]!);
        var ours = FourBitQuantizer.Quantize(input, type, (int)c["blocksize"]!, doubleQuant: true).Nested!;
        Assert.True(Math.Abs(ours.Offset - torchOffset) <= MathF.BitIncrement(MathF.Abs(torchOffset)) - MathF.Abs(torchOffset),
            $"offset {ours.Offset:R} vs PyTorch {torchOffset:R}");

        var nested = FourBitQuantizer.QuantizeAbsmax(single.Absmax, torchOffset);
        Assert.Equal(c["qabsmax"]!.AsArray().Select(v => (byte)(int)v!), nested.Codes);
        Assert.Equal(Bits(c["absmax2"]!), nested.Absmax.Select(BitConverter.SingleToUInt32Bits));
        FourBitQuantizer.Dequantize(single with { Absmax = null, Nested = nested }, output);
        Assert.Equal(Bits(c["dequantized"]!), output.Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void Double_quantization_keeps_4_bits_and_a_byte_per_block_and_stays_close_to_the_weights()
    {
        var rng = new Random(3);
        var w = Enumerable.Range(0, 64 * 1024).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.04f).ToArray();
        var q = FourBitQuantizer.Quantize(w, FourBitType.Nf4);
        Assert.Equal(32 * 1024, q.Packed.Length);
        Assert.Equal(1024, q.Nested!.Codes.Length);
        Assert.Equal(4, q.Nested.Absmax.Length);
        Assert.True(q.ByteSize * 8.0 / w.Length < 4.2, $"{q.ByteSize * 8.0 / w.Length} bits per weight");

        var back = new float[w.Length];
        FourBitQuantizer.Dequantize(q, back);
        var error = Math.Sqrt(w.Zip(back, (a, b) => (double)(a - b) * (a - b)).Average());
        var rms = Math.Sqrt(w.Average(a => (double)a * a));
        Assert.InRange(error / rms, 0.0, 0.15);
    }

    [Fact]
    public void Block_sizes_bitsandbytes_refuses_are_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => FourBitQuantizer.Quantize(new float[96], FourBitType.Nf4, blockSize: 48));

    private static uint[] Bits(JsonNode node) => node.AsArray().Select(v => (uint)v!).ToArray();

    private static float[] Floats(JsonNode node) => Bits(node).Select(BitConverter.UInt32BitsToSingle).ToArray();
}
