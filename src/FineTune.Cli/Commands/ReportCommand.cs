using System.CommandLine;
using FineTune.Cli.Quality;
using FineTune.Cli.Reports;
using FineTune.Core.Config;
using FineTune.Core.IO;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune report</c>: writes the self-contained <c>report.html</c> of a training run.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var trainDir = new Option<DirectoryInfo>("--train-dir") { Description = "Output folder of 'finetune train' (metrics.jsonl, train-summary.json).", Required = true };
        var stats = new Option<FileInfo>("--stats") { Description = "stats.json written by 'finetune tokenize'.", Required = true };
        var config = new Option<FileInfo>("--config") { Description = "The lora.yaml the run was trained with.", Required = true };
        var samples = new Option<FileInfo?>("--samples") { Description = "samples.json ('finetune samples'): [{\"prompt\", \"before\", \"after\"}] generations for held-out prompts; an empty list says there were none." };
        var quality = new Option<FileInfo?>("--quality") { Description = "quality.json ('finetune gguf-check'): each GGUF against the trained model (perplexity, replies side by side)." };
        var output = new Option<FileInfo>("--out") { Description = "Where to write report.html.", Required = true };
        var command = new Command("report", "Write report.html: loss curves, hyper-parameters, dataset statistics and sample generations (opens offline).")
        {
            trainDir, stats, config, samples, quality, output,
        };
        command.SetAction(parse =>
        {
            var train = parse.GetValue(trainDir)!.FullName;
            var run = new TrainingRun(
                TrainingRun.ReadMetrics(Path.Combine(train, "metrics.jsonl")),
                TrainingRun.ReadSummary(Path.Combine(train, "train-summary.json")),
                TrainingRun.ReadStatistics(parse.GetValue(stats)!.FullName),
                TrainingConfigDescription.Describe(TrainingConfigLoader.Load(parse.GetValue(config)!.FullName)),
                parse.GetValue(samples) is { } s ? TrainingRun.ReadSamples(s.FullName) : null)
            {
                Quality = parse.GetValue(quality) is { } q ? QualityCheck.Read(q.FullName) : null,
            };
            AtomicFile.WriteAllText(parse.GetValue(output)!.FullName, HtmlReport.Render(run));
            return 0;
        });
        return command;
    }
}
