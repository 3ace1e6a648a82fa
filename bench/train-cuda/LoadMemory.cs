using System.Text.Json.Nodes;
using FineTune.Engine;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;

/// <summary>The model file <c>WeightLoadMemory</c> measures loading (no weights of these shapes are at hand on the device).</summary>
internal static class LoadMemory
{
    /// <summary>Writes config.json and a BF16 model.safetensors of <paramref name="c"/> with random values, one tensor at a time.</summary>
    public static void WriteModel(string dir, ModelConfig c, ulong seed)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), c.ToJson());
        var tensors = LlamaTensorLayout.For(c);
        var header = new JsonObject();
        long offset = 0;
        foreach (var t in tensors)
        {
            var end = offset + t.ElementCount * 2;
            header[t.Name] = new JsonObject { ["dtype"] = "BF16", ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()), ["data_offsets"] = new JsonArray(offset, end) };
            offset = end;
        }
        var headerBytes = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (headerBytes.Length + 7) / 8 * 8;
        using var file = File.Create(Path.Combine(dir, "model.safetensors"));
        file.Write(BitConverter.GetBytes((long)padded));
        file.Write(headerBytes);
        for (var i = headerBytes.Length; i < padded; i++) file.WriteByte((byte)' ');
        var chunk = new ushort[1 << 22];
        var block = 0UL;
        foreach (var t in tensors)
        {
            var norm = t.Kind is LlamaTensorKind.InputNorm or LlamaTensorKind.PostNorm or LlamaTensorKind.QNorm or LlamaTensorKind.KNorm or LlamaTensorKind.FinalNorm;
            for (long done = 0; done < t.ElementCount; done += chunk.Length)
            {
                var n = (int)Math.Min(chunk.Length, t.ElementCount - done);
                var key = DeterministicRandom.Mix(seed ^ ++block);
                // Uniform in ±0.05 (Hugging Face's init scale), norms 1; generated in parallel slices.
                Parallel.For(0, (n + 65535) / 65536, s =>
                {
                    var rng = new DeterministicRandom(DeterministicRandom.Mix(key + (ulong)s));
                    for (var i = s * 65536; i < Math.Min(n, (s + 1) * 65536); i++)
                        chunk[i] = norm ? (ushort)0x3F80 : TensorDTypes.ToBFloat16((float)(rng.NextDouble() * 0.1 - 0.05));
                });
                file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.AsSpan(0, n)));
            }
        }
    }
}
