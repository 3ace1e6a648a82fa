using System.Diagnostics;
using FineTune.Cli.Tests.Chat;
using FineTune.Core.Datasets;
using FineTune.Engine.Model;

namespace FineTune.Cli.Tests.Distributed;

/// <summary><c>finetune train --gpus</c> and the rank environment, as a user or the build passes them.</summary>
public class GpuCountTests
{
    [Fact]
    public void Several_gpus_with_the_cpu_device_is_FT7031()
    {
        using var dir = new TempDir();
        var (code, output) = Train(dir, ["--device", "cpu", "--gpus", "2"]);
        Assert.Equal(1, code);
        Assert.Contains("error FT7031: --gpus (FineTuneGpuCount) and --nnodes need --device cuda", output);
    }

    [Fact]
    public void Zero_gpus_is_FT7030()
    {
        using var dir = new TempDir();
        var (code, output) = Train(dir, ["--device", "cuda", "--gpus", "0"]);
        Assert.Equal(1, code);
        Assert.Contains("error FT7030: --gpus (FineTuneGpuCount) is 0; it must be at least 1.", output);
    }

    [Fact]
    public void A_rank_started_without_the_nccl_id_is_FT7034_before_touching_a_gpu()
    {
        using var dir = new TempDir();
        var (code, output) = Train(dir, ["--device", "cuda"], new() { ["FINETUNE_RANK"] = "1", ["FINETUNE_WORLD_SIZE"] = "2", ["FINETUNE_LOCAL_RANK"] = "1" });
        Assert.Equal(1, code);
        Assert.Contains("error FT7034: A rank needs FINETUNE_NCCL_ID (one host) or NCCL_COMM_ID (several hosts)", output);
    }

    private static (int, string) Train(TempDir dir, string[] extra, Dictionary<string, string>? environment = null)
    {
        TinyModelFactory.Create(ChatFixture.TokenizerDir(), dir.File("model"), new TinyModelShape(Layers: 1, Hidden: 16, Heads: 2, KvHeads: 1, Intermediate: 32));
        Directory.CreateDirectory(dir.File("data"));
        TokenizedDatasetFile.Write(Path.Combine(dir.File("data"), "train.bin"), [new TokenizedExample([1, 2, 3, 4, 5, 6], [false, false, true, true, true, true])]);
        File.WriteAllText(dir.File("lora.yaml"), "r: 2\nlora_alpha: 4\nmax_steps: 2\n");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { ChatFixture.ToolDll(), "train", "--base-model", dir.File("model"), "--data", dir.File("data"), "--config", dir.File("lora.yaml"),
                     "--out", dir.File("out"), "--checkpoint-dir", dir.File("ckpt"), "--threads", "1" }.Concat(extra))
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? []) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(180)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("finetune train did not finish");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
