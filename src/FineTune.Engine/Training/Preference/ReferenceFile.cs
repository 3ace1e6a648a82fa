using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.IO;

namespace FineTune.Engine.Training.Preference;

/// <summary>
/// <c>reference-logps.json</c>: the reference model's summed completion log-probabilities of every
/// pair (<c>{"fingerprint", "train": [[chosen, rejected], ...], "validation": [...]}</c>), kept beside
/// the checkpoint while training and in the step's output afterwards.
/// </summary>
internal static class ReferenceFile
{
    public const string Name = "reference-logps.json";

    public static string ToJson(string fingerprint, IReadOnlyList<ReferenceLogps> train, IReadOnlyList<ReferenceLogps> validation)
    {
        static JsonArray Pairs(IReadOnlyList<ReferenceLogps> p) => [.. p.Select(r => (JsonNode)new JsonArray(r.Chosen, r.Rejected))];
        return new JsonObject { ["fingerprint"] = fingerprint, ["train"] = Pairs(train), ["validation"] = Pairs(validation) }.ToJsonString() + "\n";
    }

    public static void Save(string checkpointDirectory, string json)
    {
        Directory.CreateDirectory(checkpointDirectory);
        AtomicFile.WriteAllText(Path.Combine(checkpointDirectory, Name), json);
    }

    /// <summary>The cached values when the file is there, whole and made from these inputs; otherwise null (they are recomputed).</summary>
    public static (ReferenceLogps[], ReferenceLogps[])? TryLoad(string checkpointDirectory, string fingerprint, int trainPairs, int validationPairs)
    {
        var path = Path.Combine(checkpointDirectory, Name);
        if (!File.Exists(path)) return null;
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!;
            if ((string?)root["fingerprint"] != fingerprint) return null;
            static ReferenceLogps[] Read(JsonNode node) => [.. node.AsArray().Select(p => new ReferenceLogps((double)p![0]!, (double)p[1]!))];
            var train = Read(root["train"]!);
            var validation = Read(root["validation"]!);
            return train.Length == trainPairs && validation.Length == validationPairs ? (train, validation) : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null;
        }
    }

    public static void Delete(string checkpointDirectory)
    {
        var path = Path.Combine(checkpointDirectory, Name);
        if (File.Exists(path)) File.Delete(path);
    }
}
