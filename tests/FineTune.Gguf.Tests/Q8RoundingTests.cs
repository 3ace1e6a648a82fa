using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;

namespace FineTune.Gguf.Tests;

/// <summary>
/// Q8_0 rounds like C's <c>roundf</c> (halves away from zero), as ggml's reference quantizer does; the
/// vectorised kernel must agree on exact halves and on the largest float below a half, where adding
/// 0.5 and truncating would be wrong.
/// </summary>
public class Q8RoundingTests
{
    [Fact]
    public void Exact_halves_round_away_from_zero_and_values_just_below_a_half_round_down()
    {
        // amax 127 gives d = 1 and id = 1, so each value is its own quantized number before rounding.
        float[] block = [127f, 0.5f, 1.5f, -2.5f, 126.5f, 0.49999997f, -0.49999997f, -0.5f, 2.4999998f, -126.5f, 3f, -0f];
        var x = new float[64];
        block.CopyTo(x, 0);
        block.CopyTo(x, 32);

        var y = Quantizer.Quantize(GgmlType.Q8_0, x, 64);

        sbyte[] expected = [127, 1, 2, -3, 127, 0, 0, -1, 2, -127, 3, 0];
        foreach (var offset in new[] { 0, 34 })
        {
            Assert.Equal(0x3C00, BitConverter.ToUInt16(y, offset)); // d = 1.0 as IEEE half
            Assert.Equal(expected, y.Skip(offset + 2).Take(expected.Length).Select(b => (sbyte)b));
            Assert.All(y.Skip(offset + 2 + expected.Length).Take(32 - expected.Length), b => Assert.Equal(0, b));
        }
    }
}
