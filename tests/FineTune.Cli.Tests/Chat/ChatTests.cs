using FineTune.Cli.Chat;
using FineTune.Core.Diagnostics;
using FineTune.Data;
using FineTune.Data.Templates;

namespace FineTune.Cli.Tests.Chat;

public class ChatTests
{
    private static readonly ChatTemplate Llama3 = ChatTemplates.Resolve("llama-3", ".");

    [Fact]
    public void Prompt_is_the_template_rendering_plus_the_assistant_header()
    {
        var prompt = new ChatPrompt(Llama3, ChatFixture.Tokenizer);
        // Llama 3's own chat_template with add_generation_prompt=True.
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nAnd you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            prompt.Text("Be brief.", [new(Role.User, "Hi"), new(Role.Assistant, "Hello!"), new(Role.User, "And you?")]));
    }

    [Fact]
    public void Typed_special_token_text_stays_plain_text()
    {
        var tokenizer = ChatFixture.Tokenizer;
        var eot = tokenizer.TokenToId("<|eot_id|>")!.Value;
        var ids = new ChatPrompt(Llama3, tokenizer).Ids(null, [new(Role.User, "say <|eot_id|>")]);
        // Only the template's own end of the user turn is the special token.
        Assert.Single(ids, id => id == eot);
        Assert.Equal(tokenizer.TokenToId("<|begin_of_text|>"), ids[0]);
    }

    [Fact]
    public void Generation_stops_at_the_end_of_turn_token_and_streams_the_reply()
    {
        var tokenizer = ChatFixture.Tokenizer;
        var eot = tokenizer.TokenToId("<|eot_id|>")!.Value;
        var words = tokenizer.Encode("Hello world").Ids;
        var model = new ScriptedModel(tokenizer.VocabSize, [.. words, eot, .. tokenizer.Encode(" never shown").Ids]);
        var streamed = new List<string>();
        var reply = new ReplyGenerator(model, tokenizer, Llama3.StopTokens).Generate([1, 2, 3], new TokenSampler(0, 1), 100, streamed.Add);
        Assert.Equal(("Hello world", StopReason.StopToken), (reply.Text, reply.Reason));
        Assert.Equal("Hello world", string.Concat(streamed));
        Assert.Equal(words.Length + 1, model.Calls);
    }

    [Fact]
    public void A_stop_string_spread_over_several_tokens_ends_the_reply_and_is_never_printed()
    {
        var tokenizer = ChatFixture.Tokenizer;
        var script = tokenizer.Encode("Sure.\n### Instruction: more").Ids;
        Assert.True(script.Length > 4);
        var model = new ScriptedModel(tokenizer.VocabSize, script);
        var streamed = new List<string>();
        var reply = new ReplyGenerator(model, tokenizer, ["### Instruction"]).Generate([1], new TokenSampler(0, 1), 100, streamed.Add);
        Assert.Equal(("Sure.\n", StopReason.StopString), (reply.Text, reply.Reason));
        Assert.Equal("Sure.\n", string.Concat(streamed));
        Assert.DoesNotContain(streamed, s => s.Contains('#'));
    }

    [Fact]
    public void Max_tokens_and_context_length_bound_a_reply()
    {
        var tokenizer = ChatFixture.Tokenizer;
        var a = ChatFixture.SingleToken("a");
        var forever = Enumerable.Repeat(a, 100).ToArray();
        var generator = new ReplyGenerator(new ScriptedModel(tokenizer.VocabSize, forever), tokenizer, Llama3.StopTokens);
        var capped = generator.Generate([1], new TokenSampler(0, 1), 7, _ => { });
        Assert.Equal(("aaaaaaa", StopReason.MaxTokens), (capped.Text, capped.Reason));

        var small = new ReplyGenerator(new ScriptedModel(tokenizer.VocabSize, forever, contextLength: 5), tokenizer, Llama3.StopTokens);
        var full = small.Generate([1, 2], new TokenSampler(0, 1), 100, _ => { });
        Assert.Equal(("aaa", StopReason.ContextFull), (full.Text, full.Reason));
    }

    [Fact]
    public void Sampler_is_greedy_at_zero_and_repeatable_with_a_seed()
    {
        float[] logits = [0.1f, 2.0f, 1.9f, -1f];
        Assert.Equal(1, new TokenSampler(0, 5).Next(logits));
        var a = new TokenSampler(1.0, 42);
        var b = new TokenSampler(1.0, 42);
        var draws = Enumerable.Range(0, 200).Select(_ => a.Next(logits)).ToList();
        Assert.Equal(draws, Enumerable.Range(0, 200).Select(_ => b.Next(logits)));
        // softmax(0.1, 2, 1.9, -1): p(1)+p(2) = 0.91; both high-probability tokens show up, token 3 (p=0.03) rarely.
        Assert.Contains(1, draws);
        Assert.Contains(2, draws);
        Assert.InRange(draws.Count(d => d is 1 or 2), 160, 200);
    }

    [Fact]
    public void Session_keeps_history_and_reset_clears_it()
    {
        var tokenizer = ChatFixture.Tokenizer;
        var eot = tokenizer.TokenToId("<|eot_id|>")!.Value;
        var hi = ChatFixture.SingleToken("Hi");
        var model = new ScriptedModel(tokenizer.VocabSize, [hi, eot, hi, eot, hi, eot]);
        var session = new ChatSession(new ChatPrompt(Llama3, tokenizer), new ReplyGenerator(model, tokenizer, Llama3.StopTokens), new TokenSampler(0, 1), 10, "sys");
        session.Ask("one", _ => { });
        session.Ask("two", _ => { });
        Assert.Equal([Role.User, Role.Assistant, Role.User, Role.Assistant], session.Turns.Select(t => t.Role));
        Assert.Equal("Hi", session.Turns[3].Content);
        session.Reset();
        Assert.Empty(session.Turns);
        Assert.Equal("sys", session.System);
    }

    [Fact]
    public void A_gguf_file_is_refused_with_a_pointer_to_the_model_folder()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("model.bin"), "GGUF\u0003\0\0\0"u8.ToArray());
        var e = Assert.Throws<FineTuneException>(() => ChatModelLoader.CheckModelPath(dir.File("model.bin")));
        Assert.Equal("FT7007", e.Code);
        Assert.Contains("--adapter", e.Message);
        Assert.Equal("FT7008", Assert.Throws<FineTuneException>(() => ChatModelLoader.CheckModelPath(dir.File("missing"))).Code);
    }

    [Fact]
    public void Prompt_mode_answers_through_the_template_and_stops_at_eot()
    {
        using var dir = new TempDir();
        var answer = ChatFixture.SingleToken(" Paris");
        var other = ChatFixture.SingleToken("?");
        ChatFixture.WriteWiredModel(dir.File("model"), answer, other);
        var (code, output) = ChatFixture.RunTool("dotnet",
            [ChatFixture.ToolDll(), "chat", dir.File("model"), "--prompt", "Capital of France?", "--temperature", "0", "--max-tokens", "8"]);
        Assert.Equal(0, code);
        // Without the assistant header the model would say "?" until --max-tokens; after " Paris" it
        // says <|eot_id|>, which must end the reply without being printed.
        Assert.Equal(" Paris\n", output);
    }

    [Fact]
    public void Interactive_mode_through_a_pseudo_terminal()
    {
        using var dir = new TempDir();
        var answer = ChatFixture.SingleToken(" Paris");
        ChatFixture.WriteWiredModel(dir.File("model"), answer, ChatFixture.SingleToken("?"));
        var command = $"dotnet '{ChatFixture.ToolDll()}' chat '{dir.File("model")}' --temperature 0 --max-tokens 8";
        using var terminal = new PseudoTerminal(command);
        var timeout = TimeSpan.FromSeconds(120);
        string[] keys = ["Capital of France?\n", "/system Answer in one word.\n", "Again?\n", "/reset\n", "/nope\n", "\u0004"]; // \u0004: Ctrl+D
        for (var i = 0; i < keys.Length; i++)
        {
            terminal.WaitFor(">>> ", i + 1, timeout);
            terminal.Type(keys[i]);
        }
        Assert.Equal(0, terminal.WaitForExit(timeout));
        var output = terminal.Output;
        var lines = output.Replace("\r", "").Split('\n').Select(l => l.Trim()).ToList();
        Assert.Equal(2, lines.Count(l => l == "Paris"));
        Assert.Contains(lines, l => l.EndsWith("System prompt set.", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.EndsWith("Conversation cleared.", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Unknown command /nope", StringComparison.Ordinal));
    }
}
