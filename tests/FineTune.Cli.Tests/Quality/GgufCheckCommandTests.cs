using System.Text.Json;
using FineTune.Cli.Quality;
using FineTune.Cli.Tests.Chat;
using FineTune.Core.Datasets;
using FineTune.Data;
using FineTune.Data.Templates;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Gguf.Export;
using FineTune.Gguf.Quantization;
using FineTune.Tokenizers.Pipeline;

namespace FineTune.Cli.Tests.Quality;

/// <summary>
/// <c>finetune gguf-check</c> on a tiny model: an F32 GGUF of base + adapter is the trained model
/// (no gap, the same replies), a 4-bit one is measured apart from it, and the report and manifest
/// show what quality.json holds.
/// </summary>
public class GgufCheckCommandTests
{
    private static readonly ChatTemplate Llama3 = ChatTemplates.Resolve("llama-3", ".");

    private static Conversation Conversation(string user, string reply) =>
        new([new Message(Role.System, "Answer briefly."), new Message(Role.User, user), new Message(Role.Assistant, reply)]);

    [Fact]
    public async Task An_F32_gguf_matches_the_trained_model_and_a_4_bit_one_is_measured_against_it()
    {
        using var dir = new TempDir();
        // PEFT's initialisation (B = 0): base + adapter is the base model, and the merged F32 file holds its very weights.
        var (model, formatted) = Project(dir, export: true,
            [Conversation("Capital of France?", "Paris."), Conversation("Two plus two?", "Four."), Conversation("Say hi.", "Hi!")]);
        GgufExporter.Export(new ExportOptions { BaseModel = model, Adapter = dir.File("adapter"), Type = FileType.Q4_0, Name = "m", Version = "1.0.0", Output = dir.File("m.Q4_0.gguf") });

        var (code, output) = ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "gguf-check", "--base-model", model, "--adapter", dir.File("adapter"),
            "--data", formatted, "--tokens", dir.File("tokens"), "--chat-template", "llama-3", "--count", "2", "--max-tokens", "6",
            "--gguf", dir.File("m.F32.gguf"), "--gguf", dir.File("m.Q4_0.gguf"), "--out", dir.File("quality.json")]);
        Assert.True(code == 0, output);

        var check = QualityCheck.Read(dir.File("quality.json"));
        Assert.Equal("validation", check.Data);
        Assert.Equal(3, check.Examples);
        Assert.Equal(2, check.Replies.Count);
        var f32 = check.Quantizations.Single(q => q.Quantization == "F32");
        Assert.Equal(check.TrainedLoss, f32.Loss);
        Assert.Equal(0, f32.PerplexityGap);
        Assert.Equal(0, f32.RepliesDiverged);
        Assert.All(check.Replies, r => Assert.Null(r.Quantized.Single(q => q.Quantization == "F32").DivergesAt));
        var q4 = check.Quantizations.Single(q => q.Quantization == "Q4_0");
        Assert.NotEqual(check.TrainedLoss, q4.Loss);
        Assert.Contains("Q4_0", q4.TensorTypes);
        // Six tokens cannot reach a stop on an untrained model: the stop warning names both files.
        Assert.Contains("warning FT4044: The model does not learn to stop: F32 ended 0 of 2, Q4_0 ended 0 of 2", output);

        Reports.ReportFixture.Write(dir, withSamples: false);
        Assert.Equal(0, await CliApp.RunAsync(["report", "--train-dir", dir.File("train"), "--stats", dir.File("stats.json"), "--config", dir.File("lora.yaml"),
            "--quality", dir.File("quality.json"), "--out", dir.File("report.html")]));
        var html = File.ReadAllText(dir.File("report.html"));
        Assert.Contains("<section id=\"quantization\">", html);
        Assert.Contains("<tr><th>Q4_0</th>", html);
        Assert.Equal(2, html.Split("<div class=\"sample gguf\">").Length - 1);
        Assert.Contains(System.Net.WebUtility.HtmlEncode(check.Replies[0].Trained.Text), html);
    }

    /// <summary>A tiny trained project: base model, adapter (B = 0), formatted and tokenized data, and, when asked, an F32 GGUF.</summary>
    private static (string Model, string Formatted) Project(TempDir dir, bool export, Conversation[]? conversations = null)
    {
        var model = dir.File("model");
        TinyModelFactory.Create(ChatFixture.TokenizerDir(), model, new TinyModelShape(Hidden: 64, Seed: 9));
        var adapter = new LoraAdapter(ModelConfig.Load(model), new LoraSettings(4, 8, 0, false, Projections.All));
        adapter.Initialize(1);
        adapter.Save(dir.File("adapter"), "model");
        var formatted = dir.File("formatted");
        Directory.CreateDirectory(formatted);
        conversations ??= [Conversation("Capital of France?", "Paris."), Conversation("Two plus two?", "Four.")];
        FormattedDatasetFile.Write(Path.Combine(formatted, "train.jsonl"), conversations.Select(Llama3.Render));
        FormattedDatasetFile.Write(Path.Combine(formatted, "validation.jsonl"), conversations.Select(Llama3.Render));
        TokenizeStep.Run(formatted, model, 256, dir.File("tokens"));
        if (export)
            GgufExporter.Export(new ExportOptions { BaseModel = model, Adapter = dir.File("adapter"), Type = FileType.F32, Name = "m", Version = "1.0.0", Output = dir.File("m.F32.gguf") });
        else
            File.WriteAllBytes(dir.File("m.F32.gguf"), [0]);
        return (model, formatted);
    }

    private static (int, string) GgufCheck(TempDir dir, string[] extra, IReadOnlyDictionary<string, string>? environment = null) =>
        ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "gguf-check", "--base-model", dir.File("model"), "--adapter", dir.File("adapter"),
            "--data", dir.File("formatted"), "--tokens", dir.File("tokens"), "--chat-template", "llama-3", "--count", "2", "--max-tokens", "6",
            "--gguf", dir.File("m.F32.gguf"), "--out", dir.File("quality.json"), .. extra], environment: environment);

    [Fact]
    public void The_trained_models_replies_are_taken_from_the_samples_step_for_the_same_prompt_and_token_limit()
    {
        using var dir = new TempDir();
        var (_, formatted) = Project(dir, export: true);
        var prompts = FormattedDatasetFile.Read(Path.Combine(formatted, "validation.jsonl")).Select(FineTune.Cli.Samples.HeldOutPrompt.From).ToList();
        // Replies no model would give: if the gate shows them, it took them from samples.json instead of generating.
        File.WriteAllText(dir.File("samples.json"), JsonSerializer.Serialize(new object[]
        {
            new { prompt = "Capital of France?", before = "-", after = "FROM SAMPLES", after_end = "stop token", prompt_text = prompts[0]!.Text, max_tokens = 6 },
            // Made under another token limit: not the reply the gate would make, so it is generated anew.
            new { prompt = "Two plus two?", before = "-", after = "OTHER LIMIT", after_end = "stop token", prompt_text = prompts[1]!.Text, max_tokens = 48 },
        }));

        var (code, output) = GgufCheck(dir, ["--samples", dir.File("samples.json")]);
        Assert.True(code == 0, output);
        Assert.Contains("replies to 2 held-out prompts: 1 from the samples step, 1 generated", output);
        var check = QualityCheck.Read(dir.File("quality.json"));
        Assert.Equal("FROM SAMPLES", check.Replies[0].Trained.Text);
        Assert.True(check.Replies[0].Trained.Stopped);
        Assert.NotEqual("OTHER LIMIT", check.Replies[1].Trained.Text);
        // The GGUF's own replies are always generated: the F32 file differs from the planted reply only.
        Assert.NotEqual("FROM SAMPLES", check.Replies[0].Quantized.Single().Text);
        Assert.Null(check.Replies[1].Quantized.Single().DivergesAt);

        var (plainCode, plain) = GgufCheck(dir, []);
        Assert.True(plainCode == 0, plain);
        Assert.Contains("replies to 2 held-out prompts: 0 from the samples step, 2 generated", plain);
        Assert.Equal(check.Replies[0].Quantized.Single().Text, QualityCheck.Read(dir.File("quality.json")).Replies[0].Trained.Text);
    }

    [Fact]
    public void A_model_too_large_for_the_memory_the_process_may_use_is_refused_with_FT4060_before_it_is_loaded()
    {
        using var dir = new TempDir();
        var (model, _) = Project(dir, export: false);
        var weights = GateMemory.WeightBytes(ModelConfig.Load(model));
        Assert.True(weights > 60L << 20, $"the tiny model's float32 weights are {weights} bytes; the limit below must be smaller");
        // A 40 MiB managed-heap limit (what a container's memory limit does to .NET): room for the tool, not for the model.
        var (code, output) = GgufCheck(dir, [], new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x2800000" });
        Assert.Equal(1, code);
        Assert.Contains("error FT4060: The quality gate needs about", output);
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"as float32: {weights / (double)(1 << 20):0.0} MiB"), output);
        Assert.Contains("Set FineTuneQuantizationGate=false to skip the gate", output);
        Assert.DoesNotContain("OutOfMemory", output);
        Assert.False(File.Exists(dir.File("quality.json")));
    }

    [Fact]
    public void A_gguf_given_as_the_base_model_is_FT7007()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("m.gguf"), "GGUF\u0003\0\0\0"u8.ToArray());
        var (code, output) = ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "gguf-check", "--base-model", dir.File("m.gguf"), "--adapter", dir.File("a"),
            "--data", dir.File("f"), "--tokens", dir.File("t"), "--gguf", dir.File("m.gguf"), "--out", dir.File("q.json")]);
        Assert.Equal(1, code);
        Assert.Contains("error FT7007:", output);
    }
}
