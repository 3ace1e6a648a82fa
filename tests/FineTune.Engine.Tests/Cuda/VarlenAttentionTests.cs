using FineTune.Engine.Backends.Cuda.Kernels;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>The single attention launch's tile tables (no GPU needed): every block of the per-sequence launches once, the most work first.</summary>
public sealed class VarlenAttentionTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    public void Tables_hold_every_tile_of_every_sequence_once_longest_walk_first(int rows)
    {
        int[] lengths = [208, 16, 16, 1040, 48, 128, 16];
        var layout = VarlenAttention.For(lengths);
        Assert.Equal([0, 208, 224, 240, 1280, 1328, 1456, 1472], layout.Starts);
        var table = rows == 64 ? layout.Tiles64 : layout.Tiles128;
        var entries = table.Chunk(4).Select(e => (Start: e[0], Length: e[1], Tile: e[2], Pad: e[3])).ToList();
        // What one uniform launch per sequence runs: ceil(length / rows) tiles each.
        var expected = lengths.Select((l, i) => (Start: layout.Starts[i], Length: l))
            .SelectMany(s => Enumerable.Range(0, (s.Length + rows - 1) / rows).Select(t => (s.Start, s.Length, Tile: t, Pad: 0))).ToList();
        Assert.Equal(expected.Order(), entries.Order());
        Assert.Equal(expected.Count, layout.Count(rows));
        // Tile t of a sequence of n tiles walks n - t tiles (the causal diagonal): non-increasing along the table.
        var work = entries.Select(e => (e.Length + rows - 1) / rows - e.Tile).ToArray();
        Assert.Equal(work.OrderByDescending(w => w), work);
        Assert.Equal((1040 + rows - 1) / rows, work[0]);
        // Equal work keeps sequence order: the last tile of every sequence walks one tile, and those come last, in row order.
        Assert.Equal(layout.Starts[..^1], entries.Where((e, i) => work[i] == 1).Select(e => e.Start));
    }

    [Fact]
    public void Device_bytes_cover_the_worst_batch_of_16_row_sequences()
    {
        foreach (var rows in new[] { 16, 96, 1024, 4096, 29_696 })
        {
            var layout = VarlenAttention.For(Enumerable.Repeat(16, rows / 16).ToArray());
            Assert.True(4L * (layout.Tiles64.Length + layout.Tiles128.Length + layout.Starts.Length) <= VarlenAttention.BytesFor(rows), $"{rows} rows");
            // The memory plan's 3 bytes a token (GpuMemoryPlan.WorkspaceBytesPerToken) cover the buffer above a few hundred rows.
            if (rows >= 256) Assert.True(VarlenAttention.BytesFor(rows) <= 3L * rows, $"{rows} rows");
        }
    }

    [Fact]
    public void Lengths_must_be_positive_multiples_of_16()
    {
        Assert.Throws<ArgumentException>(() => VarlenAttention.For([32, 40]));
        Assert.Throws<ArgumentException>(() => VarlenAttention.For([]));
        Assert.Throws<ArgumentException>(() => VarlenAttention.For([0]));
    }

    [Fact]
    public void Upload_lays_out_both_tables_then_the_starts()
    {
        var layout = VarlenAttention.For([80, 16]);
        int[]? sent = null;
        var device = layout.Upload(0x1000, (p, data) => { Assert.Equal(0x1000UL, p); sent = data; });
        Assert.NotNull(sent);
        Assert.Equal([.. layout.Tiles64, .. layout.Tiles128, .. layout.Starts], sent);
        Assert.Equal((3, 2, 2, 96), (device.Count64, device.Count128, device.Sequences, device.Rows));
        Assert.Equal(0x1000UL + 3 * 16, device.Tiles128);
        Assert.Equal(0x1000UL + 5 * 16, device.Starts);
    }
}
