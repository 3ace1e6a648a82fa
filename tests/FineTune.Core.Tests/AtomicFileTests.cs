using FineTune.Core.IO;

namespace FineTune.Core.Tests;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ft-atomic-").FullName;

    [Fact]
    public void A_failing_writer_leaves_the_old_file_and_no_temporary()
    {
        var path = Path.Combine(_dir, "model.gguf");
        AtomicFile.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write("half-written"u8);
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_failing_directory_fill_leaves_the_old_directory()
    {
        var dir = Path.Combine(_dir, "adapter");
        AtomicFile.WriteDirectory(dir, d => File.WriteAllText(Path.Combine(d, "a.txt"), "v1"));
        Assert.Throws<IOException>(() => AtomicFile.WriteDirectory(dir, d =>
        {
            File.WriteAllText(Path.Combine(d, "a.txt"), "v2");
            throw new IOException("cancelled");
        }));
        Assert.Equal("v1", File.ReadAllText(Path.Combine(dir, "a.txt")));
        Assert.Equal([dir], Directory.GetDirectories(_dir));
    }

    [Fact]
    public void Replacing_a_directory_leaves_exactly_the_new_one()
    {
        var dir = Path.Combine(_dir, "checkpoint");
        AtomicFile.WriteDirectory(dir, d => { File.WriteAllText(Path.Combine(d, "state.json"), "1"); File.WriteAllText(Path.Combine(d, "stale.bin"), "x"); });
        AtomicFile.WriteDirectory(dir, d => File.WriteAllText(Path.Combine(d, "state.json"), "2"));
        Assert.Equal([Path.Combine(dir, "state.json")], Directory.GetFiles(dir));
        Assert.Equal("2", File.ReadAllText(Path.Combine(dir, "state.json")));
        Assert.Equal([dir], Directory.GetDirectories(_dir)); // neither the temporary nor the old folder is left
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
