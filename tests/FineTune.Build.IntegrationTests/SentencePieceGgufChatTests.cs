namespace FineTune.Build.IntegrationTests;

/// <summary>
/// `finetune chat &lt;file.gguf&gt;` on a model with Llama 2's SentencePiece vocabulary (also
/// Mistral's): the file's own tokenizer, rebuilt from its pieces and scores, and its own template
/// give the reply the project gives — what Ollama serves is what was trained. (Gemma 3's
/// vocabulary: <see cref="GemmaProjectTests"/>.)
/// </summary>
[Collection("pipeline")]
public sealed class SentencePieceGgufChatTests
{
    [Fact]
    public void Chat_with_a_llama2_vocabulary_gguf_answers_as_the_project_does()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(maxSteps: 3);
        clone.EditFile("example-project.csproj", text => text
            .Replace("tokenizer-llama3", "tokenizer-llama2")
            .Replace("<ChatTemplate Include=\"llama-3\" />", "<ChatTemplate Include=\"mistral\" />")
            .Replace("<GgufQuantizations>Q8_0;F16</GgufQuantizations>", "<GgufQuantizations>F32</GgufQuantizations>"));
        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());
        // A SentencePiece GGUF: pieces with scores, no merge list.
        var gguf = File.ReadAllBytes(Path.Combine(clone.OutputDir, "tweet-caps-1.0.0.F32.gguf"));
        Assert.True(gguf.AsSpan().IndexOf("tokenizer.ggml.scores"u8) >= 0 && gguf.AsSpan().IndexOf("tokenizer.ggml.merges"u8) < 0);

        var (prompt, system, replies) = GgufChatReplies.FirstGateReply(clone);
        var fromGguf = GgufChatReplies.Chat(clone, "bin/Debug/tweet-caps-1.0.0.F32.gguf", system, prompt);
        // Same weights as the gate's run of this file, which used the project's tokenizer and template;
        // at F32 the merged weights are the project's own, so the project answers the same.
        Assert.Equal(GgufChatReplies.GateReply(replies, "F32"), fromGguf);
        Assert.Equal(GgufChatReplies.Chat(clone, ".", system, prompt), fromGguf);
    }
}
