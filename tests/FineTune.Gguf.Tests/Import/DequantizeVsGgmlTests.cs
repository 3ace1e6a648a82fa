using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;
using FineTune.Gguf.Tests.LlamaCpp;

namespace FineTune.Gguf.Tests.Import;

/// <summary>
/// Oracle: ggml itself. Blocks quantized by ggml's <c>ggml_quantize_chunk</c> and dequantized by
/// ggml's <c>to_float</c> must give bit for bit the floats our <see cref="Dequantizer"/> reads, for
/// every type the exporter writes — the weights the quality gate measures are then the ones
/// llama.cpp (and Ollama) compute with.
/// </summary>
public sealed class DequantizeVsGgmlTests
{
    public static TheoryData<GgmlType, string> Types => new()
    {
        { GgmlType.F16, "f16" },
        { GgmlType.BF16, "bf16" },
        { GgmlType.Q8_0, "q8_0" },
        { GgmlType.Q4_0, "q4_0" },
        { GgmlType.Q5_0, "q5_0" },
        { GgmlType.Q5_1, "q5_1" },
        { GgmlType.Q4_K, "q4_K" },
        { GgmlType.Q5_K, "q5_K" },
        { GgmlType.Q6_K, "q6_K" },
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void Dequantized_floats_equal_ggmls_to_float(GgmlType type, string ggmlName)
    {
        const int rowLength = 512, rows = 24;
        var values = Weights(rows, rowLength, seed: (int)type);
        var (block, size) = GgmlTypeInfo.Layout(type)!.Value;
        var bytes = (int)GgmlTypeInfo.RowSize(type, rowLength) * rows;
        var data = GgmlTypeTraits.Quantize((int)type, values, rowLength, bytes);

        var theirs = GgmlTypeTraits.ToFloat((int)type, ggmlName, block, size, data, values.Length);
        var ours = Dequantizer.Dequantize(type, data, values.Length);

        for (var i = 0; i < ours.Length; i++)
            if (BitConverter.SingleToInt32Bits(ours[i]) != BitConverter.SingleToInt32Bits(theirs[i]))
                Assert.Fail($"{type}: value {i} (block {i / block}) is {ours[i]:R}, ggml gives {theirs[i]:R}");
        // The data is real: a type that dropped everything to zero would pass the comparison above vacuously.
        Assert.True(ours.Count(v => v != 0) > ours.Length / 2, $"{type}: most dequantized values are zero");
    }

    [Fact]
    public void A_length_that_does_not_fit_the_blocks_is_refused() =>
        Assert.Throws<ArgumentException>(() => Dequantizer.Dequantize(GgmlType.Q4_K, new byte[144], 255));

    /// <summary>Rows of different scales, some with an outlier, some all negative: the cases block scales and mins exist for.</summary>
    private static float[] Weights(int rows, int rowLength, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * rowLength];
        for (var r = 0; r < rows; r++)
        {
            var scale = MathF.Pow(10, random.Next(-4, 2));
            var offset = r % 5 == 0 ? -2 * scale : 0;
            for (var c = 0; c < rowLength; c++)
                values[r * rowLength + c] = (float)(random.NextDouble() * 2 - 1) * scale + offset;
            if (r % 3 == 0) values[r * rowLength + random.Next(rowLength)] = 40 * scale;
        }
        return values;
    }
}
