using System.Text.Json;
using System.Text.Json.Nodes;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// SFT then DPO in one `dotnet build`: the example's tweets train SFT, and generated pairs (the
/// ALL-CAPS reply chosen, the same reply in lower case rejected) train DPO from the SFT adapter; the
/// GGUF and Modelfile come from the DPO adapter, and the report and manifest carry TRL's metrics.
/// </summary>
[Collection("pipeline")]
public sealed class PreferencePipelineTests
{
    [Fact]
    public void Sft_then_dpo_builds_the_model_and_a_preference_edit_reruns_only_the_dpo_stage()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 12, withTinyBaseModel: true);
        WritePairs(clone, 48);
        // The items exactly as docs/configuration.md shows them, in place of the example's dataset item.
        var items = FineTune.Build.IntegrationTests.Docs.DocSnippets.Single("docs/configuration.md", "Preference training (DPO and ORPO)", "xml").Text;
        clone.EditFile("example-project.csproj", text => text.Replace("<FineTuneDataset Include=\"data/tweets.jsonl\" Format=\"sharegpt\" />", items.Trim()));
        clone.SetLoraValue("trainer", "dpo");
        clone.SetLoraValue("beta", "0.1");
        clone.SetLoraValue("save_steps", "0");
        clone.SetLoraValue("validation_split", "0");
        var first = clone.Dotnet("build");
        Assert.True(first.Succeeded, first.ToString());
        Assert.True(File.Exists(Path.Combine(clone.OutputDir, "tweet-caps-1.0.0.Q8_0.gguf")), first.ToString());
        Assert.True(File.Exists(Path.Combine(clone.OutputDir, "Modelfile")), first.ToString());

        // The DPO stage learned the preference: by its last step every pair's chosen reply has the higher reward.
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(clone.OutputDir, "model-manifest.json")));
        var training = manifest.RootElement.GetProperty("training");
        Assert.Equal("dpo", training.GetProperty("trainer").GetString());
        var accuracy = training.GetProperty("final_metrics").GetProperty("rewards/accuracies").GetDouble();
        Assert.True(accuracy > 0.9, $"rewards/accuracies {accuracy}\n{first}");
        Assert.True(training.GetProperty("final_metrics").GetProperty("rewards/margins").GetDouble() > 0);
        var report = File.ReadAllText(Path.Combine(clone.OutputDir, "report.html"));
        Assert.Contains("id=\"accuracy-chart\"", report);
        Assert.Contains("rewards/accuracies", report);

        // SFT ran once, into the cache; its adapter is the DPO stage's start.
        var sftStage = Path.Combine(clone.CacheDir, "sft-stage");
        var sftAdapter = Assert.Single(Directory.GetDirectories(sftStage));
        var sftWritten = File.GetLastWriteTimeUtc(Path.Combine(sftAdapter, "adapter_model.safetensors"));

        // Editing only the preference data trains DPO again from the same SFT adapter.
        clone.EditFile("data/caps-pairs.jsonl", text => string.Concat(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l + "\n")));
        var second = clone.Dotnet("build");
        Assert.True(second.Succeeded, second.ToString());
        Assert.True(second.Ran("FineTuneTrain"), second.ToString());
        Assert.Equal(sftAdapter, Assert.Single(Directory.GetDirectories(sftStage)));
        Assert.Equal(sftWritten, File.GetLastWriteTimeUtc(Path.Combine(sftAdapter, "adapter_model.safetensors")));
    }

    /// <summary>Pairs from the example's own tweets: the reply as written (ALL CAPS) chosen, in lower case rejected.</summary>
    private static void WritePairs(ModelProjectSandbox clone, int count)
    {
        var lines = File.ReadLines(Path.Combine(clone.ProjectDir, "data", "tweets.jsonl")).Take(count).Select(line =>
        {
            var turns = JsonNode.Parse(line)!["conversations"]!.AsArray();
            string Value(string from) => (string)turns.First(t => (string)t!["from"]! == from)!["value"]!;
            var reply = Value("gpt");
            return new JsonObject { ["system"] = Value("system"), ["prompt"] = Value("human"), ["chosen"] = reply, ["rejected"] = reply.ToLowerInvariant() }.ToJsonString() + "\n";
        });
        File.WriteAllText(Path.Combine(clone.ProjectDir, "data", "caps-pairs.jsonl"), string.Concat(lines));
    }
}
