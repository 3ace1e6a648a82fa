using FineTune.Core.Datasets;

namespace FineTune.Cli.Samples;

/// <summary>
/// A validation example cut where the model's first reply begins: <see cref="Text"/> is everything
/// the chat template rendered before it (system prompt, user turn, assistant header), so the model
/// continues it exactly as <c>finetune chat</c> would ask it to.
/// </summary>
/// <param name="Text">The rendered prompt, special tokens included.</param>
/// <param name="ContentSpans">Dataset text inside <see cref="Text"/>, where special tokens are not recognised.</param>
/// <param name="Question">The last message before the reply (the user's request), for display.</param>
/// <param name="Reference">The reply the dataset holds for this prompt.</param>
public sealed record HeldOutPrompt(string Text, IReadOnlyList<TextSpan> ContentSpans, string Question, string Reference)
{
    /// <summary>The prompt of <paramref name="example"/>, or null when it has no assistant reply to hold out.</summary>
    public static HeldOutPrompt? From(FormattedExample example)
    {
        if (example.AssistantSpans.Count == 0) return null;
        var reply = example.AssistantSpans.MinBy(s => s.Start);
        var cut = reply.Start;
        if (cut == 0) return null;
        var content = example.ContentSpans.Where(s => s.Start < cut).Select(s => new TextSpan(s.Start, Math.Min(s.End, cut))).ToList();
        var question = content.Count > 0 ? example.Text[content[^1].Start..content[^1].End] : "";
        // The reply's own content span excludes the end-of-turn marker that the assistant span includes.
        var replyContent = example.ContentSpans.FirstOrDefault(s => s.Overlaps(reply.Start, reply.End), reply);
        return new HeldOutPrompt(example.Text[..cut], content, question, example.Text[replyContent.Start..replyContent.End]);
    }

    /// <summary>
    /// Why <paramref name="examples"/> (the <paramref name="split"/> split) gave no prompt, in words for
    /// the build log: the split is empty, or no example has a reply after a prompt to cut at.
    /// </summary>
    public static string WhyNone(IReadOnlyList<FormattedExample> examples, string split)
    {
        if (examples.Count == 0)
            return $"the {split} split is empty (set validation_split in lora.yaml or mark a FineTuneDataset Split=\"validation\")";
        // Raw text is all "reply" (its span starts at 0); a template whose replies cannot be located has none.
        return $"none of the {examples.Count} {split} examples has an assistant reply after a prompt to hold out (raw text, or a chat template whose replies cannot be located)";
    }
}
