using System.Text.Json;
using Microsoft.Build.Framework;

namespace FineTune.Build.Tasks;

/// <summary>
/// Writes the request file that <c>finetune format</c> reads: the datasets with the metadata the
/// project sets on them, the chat template and the LoRA config. Item metadata (templates with
/// braces, system prompts with quotes and newlines) survives a JSON file intact, which it would not
/// through a command line.
/// </summary>
public sealed class FineTuneWriteFormatRequest : Microsoft.Build.Utilities.Task
{
    /// <summary>Metadata of <c>FineTuneDataset</c> that the formatter understands.</summary>
    public static readonly string[] DatasetMetadata = ["Format", "Split", "System", "Prompt", "Response", "ConversationExtension", "Sheet"];

    /// <summary>Project folder.</summary>
    [Required] public string ProjectDirectory { get; set; } = "";
    /// <summary><c>FineTuneDataset</c> items.</summary>
    [Required] public ITaskItem[] Datasets { get; set; } = [];
    /// <summary>The chat template: a built-in name or a file path.</summary>
    [Required] public string ChatTemplate { get; set; } = "";
    /// <summary>Full path of the LoRA config, or empty.</summary>
    public string LoraConfig { get; set; } = "";
    /// <summary>Where to write the request.</summary>
    [Required] public string OutputFile { get; set; } = "";

    /// <inheritdoc />
    public override bool Execute()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("projectDir", ProjectDirectory);
            w.WriteString("chatTemplate", ChatTemplate);
            if (string.IsNullOrEmpty(LoraConfig)) w.WriteNull("loraConfig"); else w.WriteString("loraConfig", LoraConfig);
            w.WriteStartArray("datasets");
            foreach (var item in Datasets)
            {
                w.WriteStartObject();
                w.WriteString("path", item.ItemSpec);
                w.WriteString("fullPath", item.GetMetadata("FullPath"));
                w.WriteStartObject("metadata");
                foreach (var name in DatasetMetadata)
                {
                    var value = item.GetMetadata(name);
                    if (!string.IsNullOrEmpty(value)) w.WriteString(name, value);
                }
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        var bytes = buffer.ToArray();
        if (File.Exists(OutputFile) && File.ReadAllBytes(OutputFile).AsSpan().SequenceEqual(bytes)) return true;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(OutputFile))!);
        var tmp = OutputFile + ".tmp-" + Environment.ProcessId;
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, OutputFile, overwrite: true);
        return true;
    }
}
