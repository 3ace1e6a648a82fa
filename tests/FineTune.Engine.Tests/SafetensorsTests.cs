using System.Text;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests;

public class SafetensorsTests
{
    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Round_trips_values_within_the_dtype_precision(TensorDType dtype)
    {
        using var dir = new TempDir();
        var values = new[] { 0f, 1f, -2.5f, 0.1f, 3.14159f, -1e-3f };
        SafetensorsWriter.Write(dir["a.safetensors"], [new("x", [2, 3], values, dtype)]);
        using var f = SafetensorsFile.Open(dir["a.safetensors"]);
        var info = f.Info("x");
        Assert.Equal(dtype, info.DType);
        Assert.Equal(new long[] { 2, 3 }, info.Shape);
        var back = f.ReadF32("x");
        var tol = dtype switch { TensorDType.F32 => 0, TensorDType.F16 => 1e-3, _ => 8e-3 };
        for (var i = 0; i < values.Length; i++) Assert.True(Math.Abs(back[i] - values[i]) <= tol * Math.Max(1, Math.Abs(values[i])), $"{values[i]} -> {back[i]}");
    }

    [Fact]
    public void A_file_reached_through_a_relative_symlink_opens_like_the_file()
    {
        // The hub cache's layout: snapshots/<commit>/model.safetensors -> ../../blobs/<etag>.
        using var dir = new TempDir();
        var values = Enumerable.Range(0, 64).Select(i => i * 0.5f).ToArray();
        Directory.CreateDirectory(dir["blobs"]);
        SafetensorsWriter.Write(dir["blobs/5e1f"], [new("x", [8, 8], values)]);
        Directory.CreateDirectory(dir["snapshots/abc"]);
        File.CreateSymbolicLink(dir["snapshots/abc/model.safetensors"], "../../blobs/5e1f");
        using var f = SafetensorsFile.Open(dir["snapshots/abc/model.safetensors"]);
        Assert.Equal(values, f.ReadF32("x"));
    }

    [Fact]
    public void Bfloat16_rounds_to_nearest_even()
    {
        // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one, 1.
        Assert.Equal(0x3F80, TensorDTypes.ToBFloat16(1f + 1f / 256));
        // 1 + 3·2^-8 is a tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        Assert.Equal(0x3F82, TensorDTypes.ToBFloat16(1f + 3f / 256));
    }

    [Fact]
    public void Layout_matches_the_format_by_hand()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir["a.safetensors"], [new("b", [1], [2f]), new("a", [2], [1f, -1f], TensorDType.BF16)]);
        var bytes = File.ReadAllBytes(dir["a.safetensors"]);
        var n = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, n % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd(' ');
        Assert.Equal("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", header);
        Assert.Equal(new byte[] { 0x80, 0x3F, 0x80, 0xBF, 0, 0, 0, 0x40 }, bytes[(int)(8 + n)..]);
    }

    [Fact]
    public void Truncated_file_is_an_error_not_a_crash()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir["a.safetensors"], [new("x", [4], [1f, 2f, 3f, 4f])]);
        var bytes = File.ReadAllBytes(dir["a.safetensors"]);
        File.WriteAllBytes(dir["cut.safetensors"], bytes[..^4]);
        Assert.Equal("FT3011", Assert.Throws<FineTuneException>(() => SafetensorsFile.Open(dir["cut.safetensors"])).Code);
        var huge = (byte[])bytes.Clone();
        BitConverter.GetBytes(long.MaxValue).CopyTo(huge, 0);
        File.WriteAllBytes(dir["huge.safetensors"], huge);
        Assert.Equal("FT3011", Assert.Throws<FineTuneException>(() => SafetensorsFile.Open(dir["huge.safetensors"])).Code);
        File.WriteAllBytes(dir["tiny.safetensors"], [1, 2, 3]);
        Assert.Equal("FT3011", Assert.Throws<FineTuneException>(() => SafetensorsFile.Open(dir["tiny.safetensors"])).Code);
    }

    [Fact]
    public void Sharded_models_are_read_through_the_index()
    {
        using var dir = new TempDir();
        SafetensorsWriter.Write(dir["model-00001-of-00002.safetensors"], [new("a", [1], [1f])]);
        SafetensorsWriter.Write(dir["model-00002-of-00002.safetensors"], [new("b", [2], [2f, 3f])]);
        File.WriteAllText(dir["model.safetensors.index.json"],
            "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
        using var w = ModelWeights.Open(dir.Path);
        Assert.Equal(["a", "b"], w.Names);
        Assert.Equal([2f, 3f], w.ReadF32("b"));
        Assert.Equal("FT3012", Assert.Throws<FineTuneException>(() => w.ReadF32("c")).Code);
    }
}
