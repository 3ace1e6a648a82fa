using FineTune.Cli.Tests.Chat;
using FineTune.Core.Datasets;
using FineTune.Engine.Model;

namespace FineTune.Cli.Tests.Train;

/// <summary>How <c>finetune train --device</c> chooses where to train, seen from the command line.</summary>
public class TrainDeviceTests
{
    [NoGpuFact]
    public void Cuda_without_a_gpu_fails_with_the_FT31xx_error_naming_what_is_missing()
    {
        using var dir = new TempDir();
        WriteRun(dir);
        var (code, output) = Train(dir, "cuda");
        Assert.True(code == 1, output);
        // Whichever piece is missing first (driver library, GPU, NVRTC, cuBLASLt), the canonical line names it.
        var line = Assert.Single(output.Split('\n'), l => l.Contains(": error FT31", StringComparison.Ordinal));
        Assert.Matches(@"error FT310[1-5]: .*(libcuda\.so\.1|cuInit|GPU|libnvrtc|libcublasLt|compute capability)", line);
        Assert.False(File.Exists(dir.File("out/adapter_model.safetensors")));
    }

    [NoGpuFact]
    public void Auto_without_a_gpu_trains_on_the_cpu_and_says_why_in_one_line()
    {
        using var dir = new TempDir();
        WriteRun(dir);
        var (code, output) = Train(dir, "auto");
        Assert.True(code == 0, output);
        var why = Assert.Single(output.Split('\n'), l => l.StartsWith("Training on the CPU:", StringComparison.Ordinal));
        Assert.Matches(@"^Training on the CPU: no usable CUDA GPU \(FT310[1-5]: [^\n]+\)\.\r?$", why);
        Assert.True(File.Exists(dir.File("out/adapter_model.safetensors")), output);
        Assert.Contains("\"device\": \"cpu", File.ReadAllText(dir.File("out/train-summary.json")));
    }

    [Fact]
    public void An_unknown_device_is_FT3027()
    {
        using var dir = new TempDir();
        WriteRun(dir);
        var (code, output) = Train(dir, "tpu");
        Assert.Equal(1, code);
        Assert.Contains("error FT3027: Unknown device 'tpu'; use auto, cpu or cuda.", output);
        Assert.False(File.Exists(dir.File("out/adapter_model.safetensors")));
    }

    /// <summary>Preference training runs in one process: asking for several GPUs is FT3122 before anything trains; auto trains it (on the GPU where there is one).</summary>
    [Fact]
    public void Dpo_on_several_gpus_is_FT3122_and_auto_trains_it()
    {
        using var dir = new TempDir();
        WriteRun(dir);
        File.WriteAllText(dir.File("lora.yaml"), "r: 2\nlora_alpha: 4\nmax_steps: 2\nlogging_steps: 1\ntrainer: dpo\n");
        TokenizedDatasetFile.Write(Path.Combine(dir.File("data"), "train.bin"), []);
        PreferenceDatasetFiles.WriteTokenized(Path.Combine(dir.File("data"), PreferenceDatasetFiles.TrainBin),
            [new TokenizedPair(new TokenizedExample([1, 2, 3, 4], [false, false, true, true]), new TokenizedExample([1, 2, 5, 6], [false, false, true, true]))]);
        var (code, output) = Train(dir, "cuda", "--gpus", "2");
        Assert.Equal(1, code);
        Assert.Contains("error FT3122: trainer: dpo trains on one GPU: --gpus (FineTuneGpuCount) above 1 and --nnodes are for SFT. Leave them unset (or 1).", output);
        Assert.False(File.Exists(dir.File("out/adapter_model.safetensors")));
        (code, output) = Train(dir, "auto");
        Assert.True(code == 0, output);
        Assert.Matches(@"step 2/2 loss \S+ .* rewards/accuracies \S+", output);
        Assert.Contains("\"rewards/margins\"", File.ReadAllText(dir.File("out/metrics.jsonl")));
    }

    private static void WriteRun(TempDir dir)
    {
        TinyModelFactory.Create(ChatFixture.TokenizerDir(), dir.File("model"), new TinyModelShape(Layers: 1, Hidden: 16, Heads: 2, KvHeads: 1, Intermediate: 32));
        Directory.CreateDirectory(dir.File("data"));
        TokenizedDatasetFile.Write(Path.Combine(dir.File("data"), "train.bin"),
            [new TokenizedExample([1, 2, 3, 4, 5, 6], [false, false, true, true, true, true])]);
        File.WriteAllText(dir.File("lora.yaml"), "r: 2\nlora_alpha: 4\nmax_steps: 2\nlogging_steps: 1\n");
    }

    private static (int, string) Train(TempDir dir, string device, params string[] more) =>
        ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "train", "--base-model", dir.File("model"), "--data", dir.File("data"),
            "--config", dir.File("lora.yaml"), "--out", dir.File("out"), "--checkpoint-dir", dir.File("ckpt"), "--device", device, "--threads", "1", .. more]);
}
