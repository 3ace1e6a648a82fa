using FineTune.Core.Diagnostics;
using FineTune.Gguf.Format;

namespace FineTune.Gguf.Tests;

public sealed class GgufRoundTripTests
{
    private static GgufWriter AllTypes(uint alignment)
    {
        var w = new GgufWriter(alignment);
        w.Set("u8", GgufValue.Scalar(GgufValueType.UInt8, (byte)200));
        w.Set("i8", GgufValue.Scalar(GgufValueType.Int8, (sbyte)-5));
        w.Set("u16", GgufValue.Scalar(GgufValueType.UInt16, (ushort)60000));
        w.Set("i16", GgufValue.Scalar(GgufValueType.Int16, (short)-300));
        w.Set("u32", GgufValue.Of(4000000000u));
        w.Set("i32", GgufValue.Of(-7));
        w.Set("f32", GgufValue.Of(1.5f));
        w.Set("bool", GgufValue.Of(true));
        w.Set("str", GgufValue.Of("héllo ✓"));
        w.Set("u64", GgufValue.Scalar(GgufValueType.UInt64, ulong.MaxValue));
        w.Set("i64", GgufValue.Scalar(GgufValueType.Int64, long.MinValue));
        w.Set("f64", GgufValue.Scalar(GgufValueType.Float64, Math.PI));
        w.Set("arr.str", GgufValue.Of(["a", "", "ß"]));
        w.Set("arr.i32", GgufValue.Of([1, -2, 3]));
        w.Set("arr.f32", GgufValue.Of([0.5f, -0.25f]));
        w.Set("arr.bool", GgufValue.Array(GgufValueType.Bool, new[] { true, false }));
        w.Set("arr.u8", GgufValue.Array(GgufValueType.UInt8, new byte[] { 1, 2, 3 }));
        w.Set("arr.nested", GgufValue.Array(GgufValueType.Array, new[] { GgufValue.Of([1, 2]), GgufValue.Of(["x"]) }));
        w.AddTensor("a", [3], GgmlType.F32, () => new byte[12]);
        w.AddTensor("b", [32, 2], GgmlType.Q8_0, () => Enumerable.Range(0, 68).Select(i => (byte)i).ToArray());
        return w;
    }

    [Theory]
    [InlineData(32u)]
    [InlineData(64u)]
    public void Every_metadata_type_and_tensor_round_trips(uint alignment)
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.gguf");
        AllTypes(alignment).Write(path);
        var f = GgufReader.Read(path);

        Assert.Equal(3u, f.Version);
        Assert.Equal(alignment, f.Alignment);
        Assert.Equal(0, f.DataOffset % alignment);
        Assert.Equal((byte)200, f.Get("u8")!.Value);
        Assert.Equal((sbyte)-5, f.Get("i8")!.Value);
        Assert.Equal((ushort)60000, f.Get("u16")!.Value);
        Assert.Equal((short)-300, f.Get("i16")!.Value);
        Assert.Equal(4000000000u, f.Get("u32")!.Value);
        Assert.Equal(-7, f.Get("i32")!.Value);
        Assert.Equal(1.5f, f.Get("f32")!.Value);
        Assert.Equal(true, f.Get("bool")!.Value);
        Assert.Equal("héllo ✓", f.Get("str")!.Value);
        Assert.Equal(ulong.MaxValue, f.Get("u64")!.Value);
        Assert.Equal(long.MinValue, f.Get("i64")!.Value);
        Assert.Equal(Math.PI, f.Get("f64")!.Value);
        Assert.Equal(new[] { "a", "", "ß" }, (string[])f.Get("arr.str")!.Value);
        Assert.Equal(new[] { 1, -2, 3 }, (int[])f.Get("arr.i32")!.Value);
        Assert.Equal(new[] { 0.5f, -0.25f }, (float[])f.Get("arr.f32")!.Value);
        Assert.Equal(new[] { true, false }, (bool[])f.Get("arr.bool")!.Value);
        Assert.Equal(new byte[] { 1, 2, 3 }, (byte[])f.Get("arr.u8")!.Value);
        var nested = (GgufValue[])f.Get("arr.nested")!.Value;
        Assert.Equal(new[] { 1, 2 }, (int[])nested[0].Value);
        Assert.Equal(new[] { "x" }, (string[])nested[1].Value);
        Assert.Equal(alignment != 32, f.Get("general.alignment") is not null);

        var b = f.Tensor("b")!;
        Assert.Equal(new long[] { 32, 2 }, b.Shape);
        Assert.Equal(GgmlType.Q8_0, b.Type);
        Assert.Equal(0ul, b.Offset % alignment);
        Assert.Equal(Enumerable.Range(0, 68).Select(i => (byte)i).ToArray(), f.ReadTensorBytes(b));
    }

    [Fact]
    public void Hand_assembled_header_is_read_as_the_spec_describes()
    {
        // Bytes built by hand from the GGUF spec: magic, version 3, 1 tensor, 1 kv ("k" = u32 7),
        // tensor "t" 1-D [4] F32 at offset 0, padding to 32, 16 data bytes, padding.
        var ms = new MemoryStream();
        var bw = new BinaryWriter(ms);
        bw.Write("GGUF"u8.ToArray()); bw.Write(3u); bw.Write(1ul); bw.Write(1ul);
        bw.Write(1ul); bw.Write((byte)'k'); bw.Write(4u); bw.Write(7u);
        bw.Write(1ul); bw.Write((byte)'t'); bw.Write(1u); bw.Write(4ul); bw.Write(0u); bw.Write(0ul);
        while (ms.Length % 32 != 0) bw.Write((byte)0);
        for (var i = 0; i < 4; i++) bw.Write((float)i);
        while (ms.Length % 32 != 0) bw.Write((byte)0); // llama.cpp pads after every tensor, the last included
        using var tmp = new TempDir();
        var path = tmp.File("hand.gguf");
        File.WriteAllBytes(path, ms.ToArray());

        var f = GgufReader.Read(path);
        Assert.Equal(7u, f.Get("k")!.Value);
        Assert.Equal(new float[] { 0, 1, 2, 3 }, f.ReadTensorAsFloat32(f.Tensor("t")!));

        // Our writer produces exactly these bytes for the same content.
        var w = new GgufWriter();
        w.Set("k", GgufValue.Of(7u));
        var data = new byte[16];
        Buffer.BlockCopy(new float[] { 0, 1, 2, 3 }, 0, data, 0, 16);
        w.AddTensor("t", [4], GgmlType.F32, () => data);
        var ours = new MemoryStream();
        w.WriteTo(ours);
        Assert.Equal(ms.ToArray(), ours.ToArray());
    }

    [Fact]
    public void Every_truncation_of_a_valid_file_is_an_FT4xxx_error()
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.gguf");
        AllTypes(32).Write(path);
        var bytes = File.ReadAllBytes(path);
        var full = GgufReader.Read(path);
        // Only the padding after the last tensor may go missing without losing data.
        var needed = full.DataOffset + full.Tensors.Max(t => (long)t.Offset + t.ByteSize);
        var cut = tmp.File("cut.gguf");
        for (var len = 0; len < bytes.Length; len++)
        {
            File.WriteAllBytes(cut, bytes.AsSpan(0, len).ToArray());
            if (len >= needed)
            {
                Assert.Equal(full.Tensors.Count, GgufReader.Read(cut).Tensors.Count);
                continue;
            }
            var e = Assert.Throws<FineTuneException>(() => GgufReader.Read(cut));
            Assert.StartsWith("FT400", e.Code);
        }
    }

    [Fact]
    public void Random_corruption_never_escapes_as_anything_but_FT4xxx()
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.gguf");
        AllTypes(32).Write(path);
        var original = File.ReadAllBytes(path);
        var rng = new Random(42);
        var bad = tmp.File("bad.gguf");
        var errors = 0;
        for (var trial = 0; trial < 2000; trial++)
        {
            var bytes = (byte[])original.Clone();
            var flips = 1 + rng.Next(4);
            // Corrupt the header region, where every length and count lives.
            for (var k = 0; k < flips; k++) bytes[rng.Next(Math.Min(bytes.Length, 700))] = (byte)rng.Next(256);
            File.WriteAllBytes(bad, bytes);
            try { GgufReader.Read(bad); }
            catch (FineTuneException e) { Assert.StartsWith("FT400", e.Code); errors++; }
        }
        Assert.True(errors > 100, $"only {errors} of 2000 corruptions were detected; the test does not reach the checks");
    }

    [Theory]
    [InlineData(new byte[] { (byte)'G', (byte)'G', (byte)'M', (byte)'L', 3, 0, 0, 0 }, "FT4001")]
    [InlineData(new byte[] { (byte)'G', (byte)'G', (byte)'U', (byte)'F', 9, 0, 0, 0 }, "FT4002")]
    public void Wrong_magic_or_version_has_its_own_code(byte[] start, string code)
    {
        using var tmp = new TempDir();
        var path = tmp.File("x.gguf");
        File.WriteAllBytes(path, [.. start, .. new byte[16]]);
        Assert.Equal(code, Assert.Throws<FineTuneException>(() => GgufReader.Read(path)).Code);
    }

    [Fact]
    public void Missing_file_is_FT4006()
    {
        Assert.Equal("FT4006", Assert.Throws<FineTuneException>(() => GgufReader.Read("/nonexistent/x.gguf")).Code);
    }
}
