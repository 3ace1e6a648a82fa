using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;

namespace FineTune.Core.Tests;

public sealed class DatasetFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ft-core-").FullName;

    [Fact]
    public void Tokenized_examples_round_trip()
    {
        var path = Path.Combine(_dir, "train.bin");
        TokenizedExample[] examples =
        [
            new([128000, 9906, 11, 1917], [false, false, true, true]),
            new([], []),
            new([int.MaxValue, 0, -1], [true, false, true]),
        ];
        TokenizedDatasetFile.Write(path, examples);
        var read = TokenizedDatasetFile.Read(path);
        Assert.Equal(examples.Length, read.Count);
        for (var i = 0; i < examples.Length; i++)
        {
            Assert.Equal(examples[i].Ids, read[i].Ids);
            Assert.Equal(examples[i].Targets, read[i].Targets);
        }
        Assert.Equal(2, read[0].TargetCount);
    }

    [Fact]
    public void Truncated_tokenized_file_is_an_error_not_a_crash()
    {
        var path = Path.Combine(_dir, "train.bin");
        TokenizedDatasetFile.Write(path, [new([1, 2, 3, 4, 5], [true, true, true, true, true])]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);
        var e = Assert.Throws<FineTuneException>(() => TokenizedDatasetFile.Read(path));
        Assert.Equal("FT3006", e.Code);
        File.WriteAllBytes(path, "not a dataset"u8.ToArray());
        Assert.Equal("FT3006", Assert.Throws<FineTuneException>(() => TokenizedDatasetFile.Read(path)).Code);
    }

    /// <summary>Flipped bits in a target flag, or bytes after the last example, are named as damage (FT3006), never trained on.</summary>
    [Fact]
    public void Damaged_target_flags_and_trailing_bytes_are_an_error_naming_the_file()
    {
        var path = Path.Combine(_dir, "train.bin");
        TokenizedDatasetFile.Write(path, [new([1, 2, 3], [false, true, true])]);
        var bytes = File.ReadAllBytes(path);
        bytes[^2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<FineTuneException>(() => TokenizedDatasetFile.Read(path));
        Assert.Equal("FT3006", e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains("target flag 65", e.Message);

        bytes[^2] ^= 0x40;
        File.WriteAllBytes(path, [.. bytes, 7]);
        Assert.Contains("1 bytes follow the last example", Assert.Throws<FineTuneException>(() => TokenizedDatasetFile.Read(path)).Message);
    }

    [Fact]
    public void Formatted_examples_round_trip_with_unicode_and_spans()
    {
        var path = Path.Combine(_dir, "train.jsonl");
        var text = "<|start|>user\nHé 👋 \"quoted\" <|eot_id|>\n<|start|>assistant\nHI!<|eot_id|>";
        var example = new FormattedExample(text, [new TextSpan(text.IndexOf("HI!"), text.Length)], [new TextSpan(15, 40)]);
        FormattedDatasetFile.Write(path, [example, example]);
        var lines = File.ReadAllLines(path);
        Assert.Equal(2, lines.Length);
        var read = FormattedDatasetFile.Read(path).ToList();
        Assert.Equal(text, read[0].Text);
        Assert.Equal(example.AssistantSpans, read[0].AssistantSpans);
        Assert.Equal(example.ContentSpans, read[1].ContentSpans);
        Assert.Null(read[0].LossSpans);
        Assert.DoesNotContain("loss_spans", lines[0]);

        // Loss on the whole text (train_on_responses_only: false) is written beside the replies, which stay.
        var whole = example.WithLossOnWholeText();
        FormattedDatasetFile.Write(path, [whole]);
        var back = Assert.Single(FormattedDatasetFile.Read(path));
        Assert.Equal(example.AssistantSpans, back.AssistantSpans);
        Assert.Equal([new TextSpan(0, text.Length)], back.TargetSpans);
    }

    [Fact]
    public void Formatted_span_outside_the_text_names_the_line()
    {
        var path = Path.Combine(_dir, "train.jsonl");
        File.WriteAllText(path, "{\"text\":\"ok\",\"assistant_spans\":[[0,2]]}\n{\"text\":\"ab\",\"assistant_spans\":[[1,9]]}\n");
        var e = Assert.Throws<FineTuneException>(() => FormattedDatasetFile.Read(path).ToList());
        Assert.Equal("FT1901", e.Code);
        Assert.Equal(2, e.Line);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
