using System.Security.Cryptography;
using System.Text;

namespace FineTune.Build.Fingerprints;

/// <summary>
/// The named inputs of one build step, each reduced to a hash: <c>file:data/x.jsonl</c> -> content
/// hash, <c>value:SystemPrompt</c> -> hash of the value. Keys use project-relative paths so a
/// checkout in another folder (CI) produces the same fingerprint.
/// </summary>
internal sealed class StepInputs
{
    private readonly SortedDictionary<string, string> _entries = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, string> Entries => _entries;

    public void Add(string key, string hash) => _entries[key] = hash;

    /// <summary>The step's fingerprint: SHA-256 over the sorted key/hash lines.</summary>
    public string Fingerprint()
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in _entries) sb.Append(k).Append('\t').Append(v).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>Serialised as one <c>key\thash</c> line per input (kept in obj/ to explain re-runs).</summary>
    public string Serialize()
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in _entries) sb.Append(k).Append('\t').Append(v).Append('\n');
        return sb.ToString();
    }

    public static Dictionary<string, string> Parse(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var tab = line.LastIndexOf('\t');
            if (tab > 0) result[line[..tab]] = line[(tab + 1)..];
        }
        return result;
    }

    /// <summary>Human-readable list of what differs from an earlier set of inputs.</summary>
    public IReadOnlyList<string> DescribeChanges(IReadOnlyDictionary<string, string> previous)
    {
        var changes = new List<string>();
        foreach (var (k, v) in _entries)
        {
            if (!previous.TryGetValue(k, out var old)) changes.Add($"{k} added");
            else if (old != v) changes.Add($"{k} changed");
        }
        foreach (var k in previous.Keys)
            if (!_entries.ContainsKey(k)) changes.Add($"{k} removed");
        return changes;
    }
}
