using FineTune.Core.Datasets;
using FineTune.Tokenizers.Text;

namespace FineTune.Tokenizers.PostProcessing;

/// <summary>One step of a tokenizer.json <c>post_processor</c> applied to a single sequence.</summary>
internal abstract class PostProcessor
{
    /// <summary>Adds special tokens when <paramref name="addSpecialTokens"/> and may adjust offsets.</summary>
    public abstract void Process(List<int> ids, List<TextSpan> offsets, Func<int, string?> idToToken, string text, bool addSpecialTokens);
}

internal sealed class SequencePostProcessor(IReadOnlyList<PostProcessor> steps) : PostProcessor
{
    public IReadOnlyList<PostProcessor> Steps => steps;

    public override void Process(List<int> ids, List<TextSpan> offsets, Func<int, string?> idToToken, string text, bool addSpecialTokens)
    {
        foreach (var step in steps) step.Process(ids, offsets, idToToken, text, addSpecialTokens);
    }
}

/// <summary>
/// <c>TemplateProcessing</c> for one sequence: the <c>single</c> template's special tokens around
/// sequence <c>$A</c>. Inserted tokens get the empty offset (0, 0), as in Hugging Face.
/// </summary>
internal sealed class TemplatePostProcessor(IReadOnlyList<int[]?> single) : PostProcessor
{
    /// <summary>Items of the single template: an array of ids for a special token, null for the sequence.</summary>
    public IReadOnlyList<int[]?> Single => single;

    public override void Process(List<int> ids, List<TextSpan> offsets, Func<int, string?> idToToken, string text, bool addSpecialTokens)
    {
        if (!addSpecialTokens) return;
        var newIds = new List<int>(ids.Count + 4);
        var newOffsets = new List<TextSpan>(ids.Count + 4);
        foreach (var item in single)
        {
            if (item is null)
            {
                newIds.AddRange(ids);
                newOffsets.AddRange(offsets);
            }
            else
            {
                foreach (var id in item)
                {
                    newIds.Add(id);
                    newOffsets.Add(new TextSpan(0, 0));
                }
            }
        }
        ids.Clear();
        ids.AddRange(newIds);
        offsets.Clear();
        offsets.AddRange(newOffsets);
    }
}

/// <summary><c>ByteLevel</c> post-processor: with <c>trim_offsets</c>, offsets exclude leading and trailing whitespace.</summary>
internal sealed class ByteLevelPostProcessor(bool trimOffsets) : PostProcessor
{
    public override void Process(List<int> ids, List<TextSpan> offsets, Func<int, string?> idToToken, string text, bool addSpecialTokens)
    {
        if (!trimOffsets) return;
        for (var i = 0; i < offsets.Count; i++)
        {
            var (start, end) = (offsets[i].Start, offsets[i].End);
            while (start < end && CharClass.IsWhiteSpace(text[start])) start++;
            while (end > start && CharClass.IsWhiteSpace(text[end - 1])) end--;
            offsets[i] = new TextSpan(start, end);
        }
    }
}
