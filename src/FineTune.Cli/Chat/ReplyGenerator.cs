using FineTune.Tokenizers;

namespace FineTune.Cli.Chat;

/// <summary>Why a reply ended.</summary>
public enum StopReason
{
    /// <summary>The model produced an end-of-turn / end-of-sequence token.</summary>
    StopToken,
    /// <summary>The reply's text reached one of the template's stop strings.</summary>
    StopString,
    /// <summary>--max-tokens was reached.</summary>
    MaxTokens,
    /// <summary>The model's context length was reached.</summary>
    ContextFull,
}

/// <summary>A finished reply: its text (stop marker excluded) and why it ended.</summary>
public sealed record Reply(string Text, StopReason Reason, int GeneratedTokens);

/// <summary>
/// Generates one assistant reply token by token, streaming text as soon as it is complete. Stops at
/// a stop token id (the tokenizer's end-of-turn tokens and the template's stop strings that are
/// single tokens), or when the text reaches a stop string that spans several tokens; text that could
/// still turn into a stop string is held back so a stop marker is never half-printed.
/// </summary>
public sealed class ReplyGenerator
{
    private readonly ILanguageModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly IReadOnlyList<string> _stopStrings;
    private readonly HashSet<int> _stopIds;

    /// <summary>Creates a generator; <paramref name="stopStrings"/> are the chat template's stop tokens.</summary>
    public ReplyGenerator(ILanguageModel model, Tokenizer tokenizer, IReadOnlyList<string> stopStrings)
    {
        _model = model;
        _tokenizer = tokenizer;
        _stopStrings = [.. stopStrings.Where(s => s.Length > 0)];
        _stopIds = [.. tokenizer.EndOfTurnTokenIds];
        foreach (var s in _stopStrings)
            if (tokenizer.TokenToId(s) is { } id && tokenizer.IsSpecial(id)) _stopIds.Add(id);
    }

    /// <summary>The token ids that end a reply.</summary>
    public IReadOnlyCollection<int> StopIds => _stopIds;

    /// <summary>Continues <paramref name="promptIds"/>; <paramref name="onText"/> receives the reply as it grows.</summary>
    public Reply Generate(IReadOnlyList<int> promptIds, TokenSampler sampler, int maxTokens, Action<string> onText, CancellationToken cancellationToken = default)
    {
        var ids = new List<int>(promptIds);
        var decoder = _tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var text = "";
        var emitted = 0;
        for (var generated = 0; ; generated++)
        {
            if (generated >= maxTokens) return Finish(StopReason.MaxTokens, generated);
            if (ids.Count >= _model.ContextLength) return Finish(StopReason.ContextFull, generated);
            cancellationToken.ThrowIfCancellationRequested();

            var next = sampler.Next(_model.NextTokenLogits(ids));
            if (_stopIds.Contains(next)) return Finish(StopReason.StopToken, generated + 1);
            ids.Add(next);
            text += decoder.Add(next);

            var stopAt = _stopStrings.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            if (stopAt >= 0)
            {
                text = text[..stopAt];
                return Finish(StopReason.StopString, generated + 1);
            }
            var safe = text.Length - HeldBack(text);
            if (safe > emitted)
            {
                onText(text[emitted..safe]);
                emitted = safe;
            }
        }

        Reply Finish(StopReason reason, int count)
        {
            if (text.Length > emitted) onText(text[emitted..]);
            return new Reply(text, reason, count);
        }
    }

    /// <summary>Length of the longest end of <paramref name="text"/> that is a proper prefix of a stop string.</summary>
    private int HeldBack(string text)
    {
        var hold = 0;
        foreach (var s in _stopStrings)
            for (var n = Math.Min(s.Length - 1, text.Length); n > hold; n--)
                if (text.AsSpan(text.Length - n).SequenceEqual(s.AsSpan(0, n))) { hold = n; break; }
        return hold;
    }
}
