using System.Text.Json;
using FineTune.Core.IO;

namespace FineTune.Engine.Weights;

/// <summary>A tensor to write: name, shape and F32 values converted to <see cref="DType"/> on write.</summary>
public sealed record TensorToWrite(string Name, long[] Shape, float[] Values, TensorDType DType = TensorDType.F32);

/// <summary>
/// Writes safetensors files atomically. Tensors are written in name order (as the Python library
/// does) so the same tensors always give the same bytes; the header is padded with spaces to a
/// multiple of 8 so the data section is aligned.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> with optional <c>__metadata__</c>.</summary>
    public static void Write(string path, IEnumerable<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, s => Write(s, tensors, metadata));

    /// <summary>Writes to a stream.</summary>
    public static void Write(Stream stream, IEnumerable<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in ordered)
            {
                var count = t.Shape.Aggregate(1L, (a, b) => a * b);
                if (count != t.Values.Length)
                    throw new ArgumentException($"Tensor '{t.Name}' has {t.Values.Length} values for shape [{string.Join(", ", t.Shape)}].");
                var bytes = count * t.DType.Size();
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.Name());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        var headerBytes = header.ToArray().ToList();
        while (headerBytes.Count % 8 != 0) headerBytes.Add((byte)' ');
        stream.Write(BitConverter.GetBytes((long)headerBytes.Count));
        stream.Write(headerBytes.ToArray());
        foreach (var t in ordered)
        {
            const int chunk = 1 << 20;
            var buffer = new byte[chunk * t.DType.Size()];
            for (var i = 0; i < t.Values.Length; i += chunk)
            {
                var n = Math.Min(chunk, t.Values.Length - i);
                TensorDTypes.FromF32(t.DType, t.Values.AsSpan(i, n), buffer);
                stream.Write(buffer, 0, n * t.DType.Size());
            }
        }
    }
}
