using FineTune.Data;
using FineTune.Data.Templates;
using FineTune.Tokenizers;

namespace FineTune.Cli.Chat;

/// <summary>
/// Turns the conversation so far into the token ids the model continues: the chat template renders
/// it exactly as in training, with the generation prompt (assistant header) the template adds.
/// </summary>
public sealed class ChatPrompt(ChatTemplate template, Tokenizer tokenizer)
{
    /// <summary>The prompt text, for display and tests.</summary>
    public string Text(string? system, IReadOnlyList<Message> turns) => Render(system, turns).Text;

    /// <summary>The prompt's token ids.</summary>
    public int[] Ids(string? system, IReadOnlyList<Message> turns)
    {
        var (text, content) = Render(system, turns);
        // Message contents are plain text: a user typing "<|eot_id|>" must not produce the special token.
        return tokenizer.Encode(text, content, addSpecialTokens: false).Ids;
    }

    private (string Text, IReadOnlyList<FineTune.Core.Datasets.TextSpan> Content) Render(string? system, IReadOnlyList<Message> turns)
    {
        var messages = new List<Message>();
        if (!string.IsNullOrEmpty(system)) messages.Add(new Message(Role.System, system));
        messages.AddRange(turns);
        var rendered = template.RenderPrompt(new Conversation(messages));
        return (rendered.Text, rendered.ContentSpans);
    }
}
