using System.Globalization;
using System.Text;
using System.Text.Json;

namespace FineTune.Gguf.Format;

/// <summary>Renders a GGUF header for people (text tables) or tools (JSON), as <c>finetune inspect</c> prints it.</summary>
public static class GgufDescription
{
    /// <summary>Metadata and tensor table as aligned text.</summary>
    public static string ToText(GgufFile file)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"GGUF v{file.Version}, {file.Metadata.Count} metadata entries, {file.Tensors.Count} tensors, alignment {file.Alignment}, {file.FileLength:N0} bytes");
        sb.AppendLine();
        var keyWidth = file.Metadata.Count == 0 ? 3 : file.Metadata.Max(kv => kv.Key.Length);
        foreach (var (key, value) in file.Metadata)
        {
            var type = value.Type == GgufValueType.Array ? $"{value.ElementType}[{((Array)value.Value).Length}]" : value.Type.ToString();
            sb.AppendLine(CultureInfo.InvariantCulture, $"{key.PadRight(keyWidth)}  {type,-16}  {value}");
        }
        sb.AppendLine();
        var nameWidth = file.Tensors.Count == 0 ? 4 : Math.Max(4, file.Tensors.Max(t => t.Name.Length));
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"name".PadRight(nameWidth)}  {"type",-7}  {"shape",-20}  {"bytes",14}");
        foreach (var t in file.Tensors)
            sb.AppendLine(CultureInfo.InvariantCulture, $"{t.Name.PadRight(nameWidth)}  {t.Type,-7}  {Shape(t),-20}  {t.ByteSize,14:N0}");
        return sb.ToString();
    }

    /// <summary>The header as a JSON object: version, alignment, metadata (arrays in full) and tensors.</summary>
    public static string ToJson(GgufFile file)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("version", file.Version);
            w.WriteNumber("alignment", file.Alignment);
            w.WriteNumber("dataOffset", file.DataOffset);
            w.WriteNumber("fileLength", file.FileLength);
            w.WriteStartObject("metadata");
            foreach (var (key, value) in file.Metadata)
            {
                w.WritePropertyName(key);
                WriteValue(w, value);
            }
            w.WriteEndObject();
            w.WriteStartArray("tensors");
            foreach (var t in file.Tensors)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("type", t.Type.ToString());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteNumber("offset", t.Offset);
                w.WriteNumber("bytes", t.ByteSize);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Shape(GgufTensorInfo t) => "[" + string.Join(", ", t.Shape) + "]";

    private static void WriteValue(Utf8JsonWriter w, GgufValue value)
    {
        if (value.Type != GgufValueType.Array)
        {
            WriteScalar(w, value.Value);
            return;
        }
        w.WriteStartArray();
        foreach (var item in (Array)value.Value)
        {
            if (item is GgufValue nested) WriteValue(w, nested);
            else WriteScalar(w, item!);
        }
        w.WriteEndArray();
    }

    private static void WriteScalar(Utf8JsonWriter w, object v)
    {
        switch (v)
        {
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case float f when float.IsFinite(f): w.WriteNumberValue(f); break;
            case double d when double.IsFinite(d): w.WriteNumberValue(d); break;
            case float or double: w.WriteStringValue(Convert.ToString(v, CultureInfo.InvariantCulture)); break;
            case ulong u: w.WriteNumberValue(u); break;
            case long l: w.WriteNumberValue(l); break;
            default: w.WriteNumberValue(Convert.ToInt64(v, CultureInfo.InvariantCulture)); break;
        }
    }
}
