using FineTune.Cli.Chat;
using FineTune.Data.Templates;
using FineTune.Engine.Inference;
using FineTune.Tokenizers;

namespace FineTune.Cli.Samples;

/// <summary>
/// Answers held-out prompts twice with greedy decoding — by the base model and by the base model
/// with the trained adapter — so the report shows what fine-tuning changed. Replies end at the chat
/// template's stop tokens or after <c>maxTokens</c>, as in <c>finetune chat</c>.
/// </summary>
public sealed class SampleGenerator(LlamaDecoder fineTuned, Tokenizer tokenizer, ChatTemplate template, int maxTokens)
{
    /// <summary>The before/after replies to each prompt, in order.</summary>
    public IReadOnlyList<SampleResult> Run(IEnumerable<HeldOutPrompt> prompts, CancellationToken cancellationToken = default)
    {
        var before = new ReplyGenerator(new EngineLanguageModel(fineTuned.WithoutAdapter()), tokenizer, template.StopTokens);
        var after = new ReplyGenerator(new EngineLanguageModel(fineTuned), tokenizer, template.StopTokens);
        // Greedy: the report must be the same on every build of the same inputs.
        var greedy = new TokenSampler(0, 0);
        var results = new List<SampleResult>();
        foreach (var prompt in prompts)
        {
            // Exactly as training and chat tokenize: dataset text never turns into special tokens.
            var ids = tokenizer.Encode(prompt.Text, prompt.ContentSpans, addSpecialTokens: false).Ids;
            var b = before.Generate(ids, greedy, maxTokens, _ => { }, cancellationToken);
            var a = after.Generate(ids, greedy, maxTokens, _ => { }, cancellationToken);
            results.Add(new SampleResult(prompt, b, a));
        }
        return results;
    }
}
