using FineTune.Build.Fingerprints;

namespace FineTune.Build.Tests;

public sealed class StepInputsTests
{
    [Fact]
    public void Fingerprint_depends_on_content_not_on_the_order_inputs_were_added()
    {
        var a = new StepInputs();
        a.Add("file:data/a.jsonl", "11");
        a.Add("file:lora.yaml", "22");
        var b = new StepInputs();
        b.Add("file:lora.yaml", "22");
        b.Add("file:data/a.jsonl", "11");
        Assert.Equal(a.Fingerprint(), b.Fingerprint());

        b.Add("file:lora.yaml", "23");
        Assert.NotEqual(a.Fingerprint(), b.Fingerprint());
    }

    [Fact]
    public void Changes_name_each_added_changed_and_removed_input()
    {
        var before = new StepInputs();
        before.Add("file:data/a.jsonl", "1");
        before.Add("file:data/b.jsonl", "2");
        before.Add("args", "3");
        var after = new StepInputs();
        after.Add("file:data/a.jsonl", "1");
        after.Add("file:data/c.jsonl", "4");
        after.Add("args", "5");

        var changes = after.DescribeChanges(StepInputs.Parse(before.Serialize()));
        Assert.Equal(["args changed", "file:data/c.jsonl added", "file:data/b.jsonl removed"], changes);
    }

    [Fact]
    public void Hasher_remembers_hashes_but_notices_edits()
    {
        var dir = Directory.CreateTempSubdirectory("ft-hash-").FullName;
        try
        {
            var file = Path.Combine(dir, "x.txt");
            File.WriteAllText(file, "one");
            var state = Path.Combine(dir, "state.tsv");
            var first = new ContentHasher(state);
            var h1 = first.HashFile(file);
            first.Save();
            Assert.Equal(h1, new ContentHasher(state).HashFile(file));

            File.WriteAllText(file, "two");
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));
            Assert.NotEqual(h1, new ContentHasher(state).HashFile(file));
            Assert.Equal(ContentHasher.HashText("two"), new ContentHasher(null).HashFile(file));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
