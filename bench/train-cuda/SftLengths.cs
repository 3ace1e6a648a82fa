using System.Text.Json;

/// <summary>
/// The realistic-length SFT workload (sft-lengths.json, written by sft_lengths.py): batches of
/// (length, prompt length) pairs that this bench and the peer script both train on.
/// </summary>
internal sealed record SftLengths(int Batch, int Warm, IReadOnlyList<IReadOnlyList<(int Length, int Prompt)>> Batches)
{
    public static SftLengths Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        var batches = root.GetProperty("batches").EnumerateArray()
            .Select(b => (IReadOnlyList<(int, int)>)b.EnumerateArray().Select(e => (e[0].GetInt32(), e[1].GetInt32())).ToList())
            .ToList();
        return new SftLengths(root.GetProperty("batch").GetInt32(), root.GetProperty("warm").GetInt32(), batches);
    }
}
