using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// Issue 15: a project with no ChatTemplate item trains and serves the base model with the model's
/// own Jinja chat template. The base model is a tiny Llama with the real Llama 3 tokenizer and Llama
/// 3.1's chat template (system header with knowledge-cutoff and date lines, which no built-in
/// renders) as chat_template.jinja: the training text, the GGUF's chat_template, the Modelfile's
/// TEMPLATE and stops, and `finetune chat` must all agree with that template.
/// </summary>
public sealed class ModelTemplateTests
{
    [Fact]
    public void Without_a_chat_template_item_the_models_own_template_drives_training_text_gguf_modelfile_and_chat()
    {
        using var clone = SandboxWithoutChatTemplateItem(out var baseModel);
        var families = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Root, "eng", "template-fixtures", "families.json")))!.AsArray();
        var template = families.First(f => (string?)f!["family"] == "llama-3.1")!["template"]!.GetValue<string>();
        File.WriteAllText(Path.Combine(baseModel, "chat_template.jinja"), template);

        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());
        // The build log says what the Modelfile covers of the model's template.
        Assert.Contains("The Modelfile TEMPLATE reproduces the model's chat template for system, user and assistant turns", build.Output);
        Assert.Contains("Not reproduced in the Modelfile TEMPLATE: tool definitions and tool calls", build.Output);

        // Training text: exactly @huggingface/jinja's rendering of each dataset conversation, loss on each reply + <|eot_id|>.
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(baseModel, "tokenizer_config.json")))!;
        var (bos, eos) = (Token(tokenizerConfig["bos_token"]), Token(tokenizerConfig["eos_token"]));
        var conversations = File.ReadLines(Path.Combine(clone.ProjectDir, "data", "tweets.jsonl")).Select(ShareGpt).ToList();
        var expected = NodeJinja.Render(conversations.Select(m => (template, new JsonObject
        {
            ["messages"] = m.DeepClone(), ["add_generation_prompt"] = false, ["bos_token"] = bos, ["eos_token"] = eos,
        })).ToList()).ToHashSet();
        var formatted = File.ReadLines(Path.Combine(clone.ProjectDir, "obj", "finetune", "formatted", "train.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.NotEmpty(formatted);
        foreach (var example in formatted)
        {
            var text = example["text"]!.GetValue<string>();
            Assert.Contains(text, expected);
            Assert.Contains("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024", text);
            var spans = example["assistant_spans"]!.AsArray();
            Assert.Single(spans);
            var span = text[spans[0]![0]!.GetValue<int>()..spans[0]![1]!.GetValue<int>()];
            Assert.EndsWith("<|eot_id|>", span);
            Assert.DoesNotContain("<|start_header_id|>", span);
        }

        // The GGUF carries the model's template unchanged.
        var gguf = clone.Ggufs().First();
        var inspect = ModelProjectSandbox.Run("dotnet", [RepoPaths.CliDll, "inspect", "--json", gguf], clone.ProjectDir);
        Assert.True(inspect.Succeeded, inspect.ToString());
        var json = inspect.Output[inspect.Output.IndexOf('{')..];
        Assert.Equal(template, JsonNode.Parse(json)!["metadata"]!["tokenizer.chat_template"]!.GetValue<string>());

        // The Modelfile's TEMPLATE, run by Go's text/template as Ollama runs it, gives the Jinja prompt (without the BOS Ollama adds).
        var modelfile = FineTune.Ollama.Modelfiles.ModelfileParser.ParseFile(Path.Combine(clone.OutputDir, "Modelfile"));
        var goTemplate = modelfile.Template;
        Assert.False(string.IsNullOrEmpty(goTemplate));
        var system = Regex.Match(File.ReadAllText(clone.ProjectFile), "<SystemPrompt>(.*)</SystemPrompt>").Groups[1].Value;
        var prompts = new List<JsonArray>
        {
            Messages(("system", system), ("user", "Post a tweet about rain.")),
            Messages(("system", system), ("user", "First?"), ("assistant", "YES!"), ("user", "Second?")),
            Messages(("user", "No system prompt here.")),
        };
        var jinjaPrompts = NodeJinja.Render(prompts.Select(m => (template, new JsonObject
        {
            ["messages"] = m.DeepClone(), ["add_generation_prompt"] = true, ["bos_token"] = bos, ["eos_token"] = eos,
        })).ToList());
        var goPrompts = GoTemplate.Render(prompts.Select(m => (goTemplate!, m)).ToList());
        for (var i = 0; i < prompts.Count; i++)
            Assert.Equal(jinjaPrompts[i][bos.Length..], goPrompts[i]);
        // Stops: the template's end-of-turn token and every eos_token_id of generation_config.json.
        var stops = modelfile.Parameters.Where(p => p.Key == "stop").Select(p => p.Value).ToList();
        Assert.Equal("<|eot_id|>", stops[0]);
        var generationStops = JsonNode.Parse(File.ReadAllText(Path.Combine(baseModel, "generation_config.json")))!["eos_token_id"]!.AsArray().Select(i => i!.GetValue<int>()).ToList();
        var vocabulary = JsonNode.Parse(File.ReadAllText(Path.Combine(baseModel, "tokenizer.json")))!["added_tokens"]!.AsArray()
            .ToDictionary(t => t!["id"]!.GetValue<int>(), t => t!["content"]!.GetValue<string>());
        foreach (var id in generationStops) Assert.Contains(vocabulary[id], stops);

        // `finetune chat` prompts through the same template: its greedy reply equals the samples step's,
        // whose prompt is the training rendering cut before the reply.
        var adapter = Directory.GetDirectories(Path.Combine(clone.CacheDir, "train")).Single(d => File.Exists(Path.Combine(d, ".complete")));
        var samples = Directory.GetFiles(Path.Combine(clone.CacheDir, "samples"), "samples.json", SearchOption.AllDirectories).Single();
        using var sampleJson = JsonDocument.Parse(File.ReadAllText(samples));
        var sample = sampleJson.RootElement[0];
        var chat = ModelProjectSandbox.Run("dotnet",
            [RepoPaths.CliDll, "chat", baseModel, "--adapter", adapter, "--system", system,
             "--prompt", sample.GetProperty("prompt").GetString()!, "--temperature", "0", "--max-tokens", "48"], clone.ProjectDir);
        Assert.True(chat.Succeeded, chat.ToString());
        // Four training steps do not teach the tiny model to stop: both replies run to --max-tokens.
        var reply = Regex.Replace(chat.Output, @"\n\[stopped: --max-tokens reached\]\s*$", "").TrimEnd('\n');
        Assert.Equal(sample.GetProperty("after").GetString(), reply);
    }

    [Fact]
    public void A_model_without_a_template_or_with_a_broken_one_stops_the_format_step_with_the_reason_at_its_file()
    {
        using var clone = SandboxWithoutChatTemplateItem(out var baseModel);
        var config = Path.Combine(baseModel, "tokenizer_config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json.Remove("chat_template");
        File.WriteAllText(config, json.ToJsonString());

        var none = clone.Dotnet("build");
        Assert.False(none.Succeeded);
        Assert.True(Regex.IsMatch(none.Output, @"tokenizer\.json ?: error FT1046: The base model has no chat template .*Add a ChatTemplate item"), none.ToString());
        Assert.False(none.Ran("FineTuneTrain"), none.ToString());

        var jinja = Path.Combine(baseModel, "chat_template.jinja");
        File.WriteAllText(jinja, "{{ bos_token }}\n{{ messages | wordwrap }}");
        var broken = clone.Dotnet("build");
        Assert.False(broken.Succeeded);
        Assert.True(broken.Output.Contains($"{jinja}(2,13): error FT1041: The filter 'wordwrap' is not supported", StringComparison.Ordinal), broken.ToString());
    }

    private static string Token(JsonNode? node) => node switch
    {
        JsonObject o => o["content"]!.GetValue<string>(),
        null => "",
        _ => node.GetValue<string>(),
    };

    private static JsonArray ShareGpt(string line)
    {
        var roles = new Dictionary<string, string> { ["system"] = "system", ["human"] = "user", ["gpt"] = "assistant" };
        return new JsonArray(JsonNode.Parse(line)!["conversations"]!.AsArray()
            .Select(m => (JsonNode)new JsonObject { ["role"] = roles[m!["from"]!.GetValue<string>()], ["content"] = m["value"]!.GetValue<string>() }).ToArray());
    }

    private static JsonArray Messages(params (string Role, string Content)[] messages) =>
        new(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray());
    /// <summary>The example with no ChatTemplate item and its tiny Llama-3-tokenizer model generated up front, so a test can change the model's template files before building.</summary>
    private static ModelProjectSandbox SandboxWithoutChatTemplateItem(out string baseModel)
    {
        var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 4, withTinyBaseModel: true);
        clone.EditFile("example-project.csproj", text => text.Replace("<ChatTemplate Include=\"llama-3\" />", ""));
        baseModel = Path.Combine(clone.ProjectDir, "models", "base");
        return clone;
    }

}

/// <summary>@huggingface/jinja through eng/template-fixtures/render-context.mjs.</summary>
internal static class NodeJinja
{
    public static List<string> Render(IReadOnlyList<(string Template, JsonObject Context)> cases)
    {
        var input = new JsonArray(cases.Select(c => (JsonNode)new JsonObject { ["template"] = c.Template, ["context"] = c.Context }).ToArray());
        var output = Tool.Run("node", [Path.Combine(RepoPaths.Root, "eng", "template-fixtures", "render-context.mjs")], input.ToJsonString(), RepoPaths.Root);
        return JsonNode.Parse(output)!.AsArray().Select((r, i) => r!["output"]?.GetValue<string>()
            ?? throw new InvalidOperationException($"@huggingface/jinja failed on case {i}: {r["error"]}")).ToList();
    }
}

/// <summary>Go's text/template as Ollama fills it, through eng/gotemplate.</summary>
internal static class GoTemplate
{
    private static readonly Lazy<string> Binary = new(() =>
    {
        var output = Path.Combine(AppContext.BaseDirectory, "gotemplate-bin", "gotemplate");
        Tool.Run("go", ["build", "-o", output, "."], null, Path.Combine(RepoPaths.Root, "eng", "gotemplate"));
        return output;
    });

    public static List<string> Render(IReadOnlyList<(string Template, JsonArray Messages)> cases)
    {
        var input = new JsonArray(cases.Select(c => (JsonNode)new JsonObject { ["template"] = c.Template, ["messages"] = c.Messages.DeepClone() }).ToArray());
        var output = Tool.Run(Binary.Value, [], input.ToJsonString(), RepoPaths.Root);
        return JsonNode.Parse(output)!.AsArray().Select((r, i) => r!["output"]?.GetValue<string>()
            ?? throw new InvalidOperationException($"Go text/template failed on case {i}: {r["error"]}")).ToList();
    }
}

internal static class Tool
{
    public static string Run(string file, IEnumerable<string> args, string? stdin, string workingDirectory)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"{file} did not finish in 3 minutes"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} exited with {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
