using System.Globalization;
using System.Text;

namespace FineTune.Cli.Tests.Reports;

/// <summary>The files of a finished run, as the tokenize and train steps write them.</summary>
internal static class ReportFixture
{
    public const string Hostile = "<script>alert('x')</script> & \"quotes\"";

    public static void Write(TempDir dir, bool withSamples = true)
    {
        var train = Directory.CreateDirectory(dir.File("train")).FullName;
        var metrics = new StringBuilder();
        for (var step = 1; step <= 60; step++)
        {
            var loss = 2.5 * Math.Exp(-step / 20.0) + 0.4;
            var lr = step <= 5 ? 2e-4 * step / 5 : 2e-4 * (60 - step) / 55;
            metrics.Append(CultureInfo.InvariantCulture, $"{{\"step\":{step},\"epoch\":{step / 30.0},\"loss\":{loss},\"learning_rate\":{lr},\"grad_norm\":1.25,\"tokens\":{step * 4096},\"tokens_per_second\":2048.5,\"elapsed_seconds\":{step * 2.0}}}\n");
            if (step % 15 == 0)
                metrics.Append(CultureInfo.InvariantCulture, $"{{\"step\":{step},\"epoch\":{step / 30.0},\"eval_loss\":{loss + 0.15}}}\n");
        }
        File.WriteAllText(Path.Combine(train, "metrics.jsonl"), metrics.ToString());
        File.WriteAllText(Path.Combine(train, "train-summary.json"),
            "{\"device\":\"cpu\",\"engine_version\":\"0.1.0\",\"steps\":60,\"final_loss\":0.52,\"final_eval_loss\":0.67,\"note\":\"" + Hostile.Replace("\"", "\\\"") + "\"}");
        File.WriteAllText(dir.File("stats.json"), """
            {"train": {"examples": 950, "tokens": 123456, "target_tokens": 40000, "truncated": 3, "max_length": 256,
                       "length_histogram": [[32, 10], [64, 200], [128, 500], [256, 240]]},
             "validation": {"examples": 50, "tokens": 6400, "target_tokens": 2000, "truncated": 0, "max_length": 200,
                       "length_histogram": [[32, 1], [64, 12], [128, 25], [256, 12]]}}
            """);
        File.WriteAllText(dir.File("lora.yaml"), "r: 8\nlora_alpha: 32\nlearning_rate: 2e-4\nmax_steps: 60\n");
        if (withSamples)
        {
            File.WriteAllText(dir.File("samples.json"), """
                [{"prompt": "Post a tweet about the first snow.", "before": "the snow is nice", "after": "FIRST SNOW! #WINTER",
                  "reference": "I LOVE THE FIRST SNOW!", "before_end": "max tokens (48)", "after_end": "stop token"},
                 {"prompt": "<script>alert('x')</script> & \"quotes\"", "before": "a < b", "after": "B > A"}]
                """);
        }
    }
}
