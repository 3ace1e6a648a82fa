using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Core.IO;
using FineTune.Engine.Lora;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Training;

/// <summary>
/// The resumable state after an optimizer step: adapter values, AdamW moments, the step, the
/// metrics so far and a fingerprint of the inputs, so a checkpoint from other inputs is never used.
/// Batches and dropout masks derive from (seed, step), so nothing else needs saving for a resumed
/// run to end byte-identical to an uninterrupted one.
/// </summary>
internal static class Checkpoint
{
    /// <summary>The checkpoint's folder inside the checkpoint directory.</summary>
    public const string Folder = "checkpoint";

    /// <summary>
    /// The state after <paramref name="Step"/> steps. <paramref name="WorldSize"/> is the number of ranks that wrote it, for
    /// the log only: every rank holds the same adapter and moments and a step's examples do not depend
    /// on the rank count, so a checkpoint resumes on any number of GPUs.
    /// </summary>
    public sealed record State(int Step, long Tokens, double Seconds, double LastLoss, string Fingerprint, List<string> MetricLines, int WorldSize = 1);

    public static void Save(string checkpointDirectory, LoraAdapter adapter, State state) =>
        AtomicFile.WriteDirectory(Path.Combine(checkpointDirectory, Folder), dir =>
        {
            var tensors = adapter.Tensors.SelectMany(t => new[]
            {
                new TensorToWrite(t.Name, [t.Rows, t.Cols], t.Value),
                new TensorToWrite(t.Name + ".exp_avg", [t.Rows, t.Cols], t.M),
                new TensorToWrite(t.Name + ".exp_avg_sq", [t.Rows, t.Cols], t.V),
            });
            SafetensorsWriter.Write(Path.Combine(dir, "state.safetensors"), tensors);
            File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), state.MetricLines);
            var json = new JsonObject
            {
                ["step"] = state.Step,
                ["tokens"] = state.Tokens,
                ["seconds"] = state.Seconds,
                ["last_loss"] = state.LastLoss,
                ["fingerprint"] = state.Fingerprint,
                ["world_size"] = state.WorldSize,
            };
            // Checksums of the other two files: a damaged checkpoint must never resume into different bytes.
            json["sha256"] = new JsonObject
            {
                ["state.safetensors"] = Sha256(Path.Combine(dir, "state.safetensors")),
                ["metrics.jsonl"] = Sha256(Path.Combine(dir, "metrics.jsonl")),
            };
            File.WriteAllText(Path.Combine(dir, "state.json"), json.ToJsonString());
        });

    private static string Sha256(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// Loads the checkpoint into <paramref name="adapter"/> when it exists and matches
    /// <paramref name="fingerprint"/>. A checkpoint from other inputs sets <paramref name="mismatched"/>;
    /// one that is damaged (unreadable, truncated, checksum mismatch) sets <paramref name="damage"/>
    /// to what is wrong. Either way null is returned and training starts over, never fails for it.
    /// </summary>
    public static State? TryLoad(string checkpointDirectory, LoraAdapter adapter, string fingerprint, out bool mismatched, out string? damage)
    {
        mismatched = false;
        damage = null;
        var dir = Path.Combine(checkpointDirectory, Folder);
        var statePath = Path.Combine(dir, "state.json");
        if (!File.Exists(statePath)) return null;
        try
        {
            JsonObject json;
            try { json = JsonNode.Parse(File.ReadAllText(statePath))!.AsObject(); }
            catch (JsonException e) { damage = $"state.json is not valid JSON ({e.Message})"; return null; }
            if ((string?)json["fingerprint"] != fingerprint) { mismatched = true; return null; }
            foreach (var name in new[] { "state.safetensors", "metrics.jsonl" })
            {
                var expected = (string?)json["sha256"]?[name];
                var path = Path.Combine(dir, name);
                if (expected is null) { damage = $"state.json records no checksum for {name}"; return null; }
                if (!File.Exists(path)) { damage = $"{name} is missing"; return null; }
                if (Sha256(path) != expected) { damage = $"{name} does not match its recorded SHA-256"; return null; }
            }
            using (var file = SafetensorsFile.Open(Path.Combine(dir, "state.safetensors")))
                foreach (var t in adapter.Tensors)
                {
                    file.ReadF32(file.Info(t.Name), t.Value);
                    file.ReadF32(file.Info(t.Name + ".exp_avg"), t.M);
                    file.ReadF32(file.Info(t.Name + ".exp_avg_sq"), t.V);
                }
            var lines = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Where(l => l.Length > 0).ToList();
            return new State((int)json["step"]!, (long)json["tokens"]!, (double)json["seconds"]!, (double)json["last_loss"]!, fingerprint, lines,
                (int?)json["world_size"] ?? 1);
        }
        catch (Exception e) when (e is FineTuneException or IOException or InvalidDataException or FormatException or InvalidOperationException or InvalidCastException or ArgumentException or NullReferenceException)
        {
            damage = e.Message;
            return null;
        }
    }

    public static void Delete(string checkpointDirectory)
    {
        var dir = Path.Combine(checkpointDirectory, Folder);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }
}
