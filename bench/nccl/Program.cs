// bench/nccl: what multi-GPU training can check on a machine with one GPU, printed as JSON lines.
//   1. DistributedChecks (the [CudaFact] NcclTests' code): the rank-order sum kernel, NCCL collectives
//      on a one-rank communicator, training through a one-rank NCCL group vs the single process.
//   2. The CLI's rank path: `finetune train --device cuda` alone, then the same command started as
//      rank 0 of 1 (FINETUNE_RANK/WORLD_SIZE/NCCL_ID, as the launcher starts ranks, this process
//      holding NCCL's bootstrap root) must write the same adapter bytes.
//   3. A rank whose peer never comes (rank 0 of 2, FINETUNE_NCCL_TIMEOUT=10) stops with FT3152
//      instead of hanging.
//
//   nccl-checks <path to finetune.dll>
using System.Diagnostics;
using System.Text.Json.Nodes;
using FineTune.Core.Datasets;
using FineTune.Engine.Backends.Cuda.Distributed;
using FineTune.Engine.Backends.Cuda.Verification;

var cli = args.Length > 0 ? Path.GetFullPath(args[0]) : throw new ArgumentException("usage: nccl-checks <finetune.dll>");
var failed = 0;
void Emit(JsonObject o)
{
    if (o["passed"] is JsonValue v && !v.GetValue<bool>()) failed++;
    Console.WriteLine(o.ToJsonString());
}

using (var checks = DistributedChecks.Open())
{
    Emit(new JsonObject { ["kind"] = "environment", ["device"] = checks.Gpu.Context.Device.Name, ["nccl"] = NcclRankGroup.Describe() });
    foreach (var name in checks.All.Keys)
    {
        var clock = Stopwatch.StartNew();
        var r = checks.Run(name);
        Emit(new JsonObject { ["kind"] = "check", ["name"] = name, ["passed"] = r.Passed, ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 2), ["detail"] = r.ToString() });
    }
}

var root = Path.Combine(Path.GetTempPath(), "nccl-cli-" + Guid.NewGuid().ToString("N")[..8]);
var model = TrainingChecks.WriteModel(Path.Combine(root, "model"), TrainingChecks.TinyConfig("llama"), seed: 41);
Directory.CreateDirectory(Path.Combine(root, "data"));
TokenizedDatasetFile.Write(Path.Combine(root, "data", "train.bin"), TrainingChecks.Data(24, 160, 3));
File.WriteAllText(Path.Combine(root, "lora.yaml"), "r: 8\nlora_alpha: 16\nlora_dropout: 0.1\nmax_steps: 6\nper_device_train_batch_size: 4\ngradient_accumulation_steps: 2\nlearning_rate: 0.003\nlogging_steps: 1\n");

(int Code, string Output, double Seconds) Train(string name, Dictionary<string, string> env)
{
    var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in new[] { cli, "train", "--base-model", model, "--data", Path.Combine(root, "data"), "--config", Path.Combine(root, "lora.yaml"),
                 "--out", Path.Combine(root, name), "--checkpoint-dir", Path.Combine(root, name + "-ck"), "--device", "cuda" })
        psi.ArgumentList.Add(a);
    foreach (var (k, v) in env) psi.Environment[k] = v;
    var clock = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    var stdout = p.StandardOutput.ReadToEndAsync();
    var stderr = p.StandardError.ReadToEndAsync();
    if (!p.WaitForExit(TimeSpan.FromSeconds(60))) { p.Kill(entireProcessTree: true); return (-1, "timed out: " + stdout.Result + stderr.Result, clock.Elapsed.TotalSeconds); }
    return (p.ExitCode, stdout.Result + stderr.Result, clock.Elapsed.TotalSeconds);
}

var single = Train("single", []);
var id = Convert.ToHexString(NcclRankGroup.CreateUniqueId());
var rank = Train("rank", new() { ["FINETUNE_RANK"] = "0", ["FINETUNE_WORLD_SIZE"] = "1", ["FINETUNE_LOCAL_RANK"] = "0", ["FINETUNE_NCCL_ID"] = id });
var same = single.Code == 0 && rank.Code == 0 &&
           File.ReadAllBytes(Path.Combine(root, "single", "adapter_model.safetensors")).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(root, "rank", "adapter_model.safetensors")));
Emit(new JsonObject
{
    ["kind"] = "check", ["name"] = "cli_rank0_of_1_equals_single_process", ["passed"] = same,
    ["seconds"] = Math.Round(single.Seconds + rank.Seconds, 2),
    ["single"] = single.Output.Length > 1500 ? single.Output[^1500..] : single.Output,
    ["rank"] = rank.Output.Length > 1500 ? rank.Output[^1500..] : rank.Output,
});

var lonelyId = Convert.ToHexString(NcclRankGroup.CreateUniqueId());
var lonely = Train("lonely", new() { ["FINETUNE_RANK"] = "0", ["FINETUNE_WORLD_SIZE"] = "2", ["FINETUNE_LOCAL_RANK"] = "0", ["FINETUNE_NCCL_ID"] = lonelyId, ["FINETUNE_NCCL_TIMEOUT"] = "10" });
Emit(new JsonObject
{
    ["kind"] = "check", ["name"] = "rank_without_its_peer_times_out_with_FT3152", ["passed"] = lonely.Code == 1 && lonely.Output.Contains("error FT3152"),
    ["seconds"] = Math.Round(lonely.Seconds, 2), ["output"] = lonely.Output.Length > 1500 ? lonely.Output[^1500..] : lonely.Output,
});
try { Directory.Delete(root, recursive: true); } catch (IOException) { }
return failed == 0 ? 0 : 1;
