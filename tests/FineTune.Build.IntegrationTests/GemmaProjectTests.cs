using System.Text.RegularExpressions;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A Gemma 3 model repository built end to end with `dotnet build`: a tiny gemma3_text base model
/// made by `finetune new-tiny-model --architecture gemma3_text` with the real Gemma 3 tokenizer,
/// the model's own Jinja chat template (no ChatTemplate item), LoRA training on the CPU, GGUF as llama.cpp's gemma3, a Modelfile that
/// stops at &lt;end_of_turn&gt;, and `finetune chat` on the result, on the project and on each GGUF file alone.
/// </summary>
public class GemmaProjectTests
{
    [Fact]
    public void A_gemma3_project_builds_gguf_and_modelfile_and_chats()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 3);
        clone.EditFile("example-project.csproj", text => text
            .Replace("tokenizer-llama3", "tokenizer-gemma3")
            .Replace("--seed;42\"", "--seed;42;--architecture;gemma3_text\"")
            .Replace("<ChatTemplate Include=\"llama-3\" />", "")
            .Replace("<GgufQuantizations>Q8_0;F16</GgufQuantizations>", "<GgufQuantizations>Q4_K_M;F32</GgufQuantizations>"));
        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());

        var config = File.ReadAllText(Path.Combine(clone.ProjectDir, "models", "base", "config.json"));
        Assert.Contains("\"model_type\": \"gemma3_text\"", config);
        var gguf = Path.Combine(clone.OutputDir, "tweet-caps-1.0.0.Q4_K_M.gguf");
        Assert.True(File.Exists(gguf), build.ToString());
        // general.architecture is the first string value of the header: llama.cpp's gemma3 graph.
        var header = System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(gguf).AsSpan(0, 4096));
        Assert.Contains("general.architecture", header);
        Assert.Matches("general\\.architecture.{12}gemma3", header);

        // No ChatTemplate item: the model's own Jinja template (from Gemma 3's tokenizer_config.json)
        // renders the training text and goes into the GGUF unchanged.
        var ownTemplate = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(clone.ProjectDir, "models", "base", "tokenizer_config.json")))!["chat_template"]!.GetValue<string>();
        var ggufBytes = File.ReadAllBytes(gguf);
        Assert.True(ggufBytes.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(ownTemplate)) >= 0, "the GGUF does not hold the model's own chat_template");
        var formatted = File.ReadAllText(Directory.GetFiles(Path.Combine(clone.ProjectDir, "obj", "finetune"), "train.jsonl", SearchOption.AllDirectories).First());
        Assert.Contains("<start_of_turn>user\\n", formatted);
        Assert.Contains("<end_of_turn>", formatted);

        var modelfile = File.ReadAllText(Path.Combine(clone.OutputDir, "Modelfile"));
        Assert.Contains("FROM ./tweet-caps-1.0.0.Q4_K_M.gguf", modelfile);
        Assert.Contains("<start_of_turn>", modelfile);
        Assert.Contains("PARAMETER stop <end_of_turn>\n", modelfile);

        var adapter = Directory.GetDirectories(Path.Combine(clone.CacheDir, "train")).Single(d => File.Exists(Path.Combine(d, ".complete")));
        var cli = Path.Combine(RepoPaths.Root, "src", "FineTune.Cli", "bin", "Debug", "net10.0", "finetune.dll");
        var chat = ModelProjectSandbox.Run("dotnet",
            [cli, "chat", Path.Combine(clone.ProjectDir, "models", "base"), "--adapter", adapter,
             "--prompt", "Write a tweet about rain.", "--temperature", "0", "--max-tokens", "8"], clone.ProjectDir);
        Assert.True(chat.Succeeded, chat.ToString());
        Assert.False(string.IsNullOrWhiteSpace(Regex.Replace(chat.Output, @"\[stopped[^\]]*\]", "")), chat.ToString());
        Assert.DoesNotContain("<start_of_turn>", chat.Output);

        // `finetune chat <file.gguf>`: Gemma 3's SentencePiece tokenizer rebuilt from the file gives the
        // gate's reply on those weights (the project's tokenizer), and the F32 file (the project's own
        // weights, merged) the project's reply.
        var (prompt, system, replies) = GgufChatReplies.FirstGateReply(clone);
        var q4 = GgufChatReplies.Chat(clone, "bin/Debug/tweet-caps-1.0.0.Q4_K_M.gguf", system, prompt);
        Assert.Equal(GgufChatReplies.GateReply(replies, "Q4_K_M"), q4);
        var f32 = GgufChatReplies.Chat(clone, "bin/Debug/tweet-caps-1.0.0.F32.gguf", system, prompt);
        Assert.Equal(GgufChatReplies.GateReply(replies, "F32"), f32);
        Assert.Equal(GgufChatReplies.Chat(clone, ".", system, prompt), f32);
    }
}
