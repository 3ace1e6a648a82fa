using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Data.Jinja;

namespace FineTune.Data.Templates;

/// <summary>
/// A base model's own Jinja chat template as a chat format: training text is exactly what the
/// template renders (as transformers' <c>apply_chat_template</c> would), the loss spans are the
/// assistant replies located in that rendering (or the template's <c>{% generation %}</c> blocks)
/// each extended to the end-of-turn token after it, and the stop tokens are those end-of-turn
/// tokens plus the model's EOS tokens.
/// </summary>
internal sealed class JinjaChatFormat
{
    /// <summary>
    /// What <c>strftime_now</c> reports (Llama 3.2 and Granite print today's date in the system
    /// turn): a fixed day, so the same data renders to the same training text on every build.
    /// </summary>
    public static readonly DateTimeOffset FixedNow = new(2024, 7, 26, 0, 0, 0, TimeSpan.Zero);

    private readonly JinjaTemplate _template;
    private readonly string? _bos, _eos;
    private readonly string[] _markers;

    public JinjaChatFormat(ModelTemplateSource source, string? bosToken, string? eosToken, IEnumerable<string> markerTokens, IEnumerable<string> extraStops)
    {
        Source = source;
        _template = JinjaTemplate.Parse(source.Template, source.Origin);
        (_bos, _eos) = (Nullify(bosToken), Nullify(eosToken));
        var stopsFromConfig = extraStops.Where(s => s.Length > 0).ToList();
        // Longest first, so a marker that contains another is found whole.
        _markers = [.. markerTokens.Concat(stopsFromConfig).Append(_eos ?? "").Where(m => m.Length > 0).Distinct().OrderByDescending(m => m.Length)];
        var probe = Probe();
        EndOfTurn = probe.EndOfTurn;
        BosText = _bos is not null && probe.Text.StartsWith(_bos, StringComparison.Ordinal) ? _bos : null;
        StopTokens = [.. new[] { EndOfTurn ?? "" }.Concat(stopsFromConfig).Append(_eos ?? "").Where(s => s.Length > 0).Distinct()];
        GenerationPrompt = probe.GenerationPrompt;
    }

    private static string? Nullify(string? s) => string.IsNullOrEmpty(s) ? null : s;

    public ModelTemplateSource Source { get; }
    /// <summary>The token that ends a reply, or null when the template ends replies with none (then replies cannot be masked).</summary>
    public string? EndOfTurn { get; }
    public string? BosText { get; }
    public string EosText => _eos ?? "";
    public IReadOnlyList<string> StopTokens { get; }
    public string GenerationPrompt { get; }

    /// <summary>Renders <paramref name="messages"/> (with the generation prompt when asked).</summary>
    public string RenderText(IReadOnlyList<Message> messages, bool addGenerationPrompt) =>
        _template.Render(Context(MarkedRendering.Messages(messages, marked: false), addGenerationPrompt), FixedNow).Text;

    private Dictionary<string, object?> Context(List<object?> messages, bool addGenerationPrompt)
    {
        var context = new Dictionary<string, object?> { ["messages"] = messages, ["add_generation_prompt"] = addGenerationPrompt };
        if (_bos is not null) context["bos_token"] = _bos;
        if (_eos is not null) context["eos_token"] = _eos;
        return context;
    }

    /// <summary>Training text: the whole conversation, the replies (each with its end-of-turn token) as loss spans.</summary>
    public FormattedExample Render(Conversation conversation, bool lossOnReplies)
    {
        if (conversation.RawText is { } raw)
        {
            var start = BosText?.Length ?? 0;
            var text = BosText + raw + EosText;
            return new FormattedExample(text, [new TextSpan(0, text.Length)], raw.Length > 0 ? [new TextSpan(start, start + raw.Length)] : []);
        }
        var where = $"{conversation.SourceFile}({conversation.SourceLine})";
        if (lossOnReplies) return InRow(conversation, () => RenderWithSpans(conversation.Messages, addGenerationPrompt: false, where, replies: true));
        // Loss on the whole text: the replies are still located when they can be (held-out prompts are cut
        // where the first one begins); a template whose replies cannot be located trains all the same.
        try
        {
            return InRow(conversation, () => RenderWithSpans(conversation.Messages, addGenerationPrompt: false, where, replies: true)).WithLossOnWholeText();
        }
        catch (FineTuneException e) when (e.Code == ChatTemplateErrors.Unmaskable)
        {
            return InRow(conversation, () => RenderWithSpans(conversation.Messages, addGenerationPrompt: false, where, replies: false)).WithLossOnWholeText();
        }
    }

    /// <summary>The prompt an inference server sends: the conversation so far and the generation prompt.</summary>
    public FormattedExample RenderPrompt(Conversation conversation) =>
        InRow(conversation, () => RenderWithSpans(conversation.Messages, addGenerationPrompt: true, where: null, replies: false));

    private FormattedExample InRow(Conversation c, Func<FormattedExample> render)
    {
        try
        {
            return render();
        }
        catch (FineTuneException e) when (c.SourceFile is not null && e.Code is JinjaErrors.Render or JinjaErrors.Limit)
        {
            // A template that refuses a conversation (Gemma: no system role) is about this row of the data.
            throw new FineTuneException(e.Code, $"{e.Message} (rendering this example with the chat template in {Source.File})", c.SourceFile, c.SourceLine, 1, e);
        }
    }

    private FormattedExample RenderWithSpans(IReadOnlyList<Message> messages, bool addGenerationPrompt, string? where, bool replies)
    {
        var real = _template.Render(Context(MarkedRendering.Messages(messages, marked: false), addGenerationPrompt), FixedNow);
        if (MarkedRendering.CannotMark(messages) is { } why) throw Unmaskable(why, where);
        var marked = _template.Render(Context(MarkedRendering.Messages(messages, marked: true), addGenerationPrompt), FixedNow).Text;
        var occurrences = MarkedRendering.Locate(marked, real.Text)
            ?? throw Unmaskable("the template renders the message contents differently when they are marked (it inspects or rewrites them)", where);
        var content = MarkedRendering.ContentSpans(occurrences);
        if (addGenerationPrompt || !replies) return new FormattedExample(real.Text, [], content);

        if (real.GenerationSpans.Count > 0) return new FormattedExample(real.Text, real.GenerationSpans, content);
        var spans = new List<TextSpan>();
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != Role.Assistant) continue;
            var mine = occurrences.Where(o => o.Message == i).ToList();
            if (mine.Count != 1)
                throw Unmaskable($"the reply in message {i + 1} appears {mine.Count} times in the rendering, not once", where);
            var end = EndOfTurnAfter(real.Text, mine[0].End, NextStart(occurrences, mine[0].End, real.Text.Length))
                ?? throw Unmaskable($"no end-of-turn token ({string.Join(", ", _markers.Take(6))}{(_markers.Length > 6 ? ", ..." : "")}) follows the reply in message {i + 1}", where);
            spans.Add(new TextSpan(mine[0].Start, end));
        }
        return new FormattedExample(real.Text, spans, content);
    }

    private static int NextStart(List<MarkedRendering.Occurrence> occurrences, int after, int length) =>
        occurrences.Where(o => o.Start >= after && o.End > o.Start || o.Start > after).Select(o => o.Start).DefaultIfEmpty(length).Min();

    /// <summary>The end of the first marker token in <c>text[from..to)</c>, or null.</summary>
    private int? EndOfTurnAfter(string text, int from, int to)
    {
        var best = -1;
        var bestEnd = -1;
        foreach (var m in _markers)
        {
            var at = text.IndexOf(m, from, StringComparison.Ordinal);
            if (at < 0 || at + m.Length > to) continue;
            if (best < 0 || at < best) (best, bestEnd) = (at, at + m.Length);
        }
        return best < 0 ? null : bestEnd;
    }

    private FineTuneException Unmaskable(string why, string? where) => new(ChatTemplateErrors.Unmaskable,
        $"Cannot locate the assistant replies in the base model's chat template ({Source.File}) to train on them only: {why}. " +
        "Use a built-in ChatTemplate made for this model, or set train_on_responses_only: false in lora.yaml." + (where is null ? "" : $" Example: {where}."),
        Source.File);

    private (string Text, string? EndOfTurn, string GenerationPrompt) Probe()
    {
        var conversation = new List<Message> { new(Role.User, "Hi"), new(Role.Assistant, "Hello") };
        string? endOfTurn = null;
        FormattedExample example;
        try
        {
            example = RenderWithSpans(conversation, addGenerationPrompt: false, "the probe conversation [user: Hi, assistant: Hello]", replies: true);
            var reply = example.AssistantSpans[0];
            var replyContent = example.ContentSpans.First(s => s.Start >= reply.Start);
            endOfTurn = example.Text[replyContent.End..reply.End].TrimStart();
        }
        catch (FineTuneException e) when (e.Code == ChatTemplateErrors.Unmaskable)
        {
            // Replies end with no token: training on replies only fails when asked for (FT1047), everything else works.
            example = RenderWithSpans(conversation, addGenerationPrompt: false, null, replies: false);
        }
        var userOnly = RenderWithSpans(conversation.Take(1).ToList(), addGenerationPrompt: true, where: null, replies: false);
        var userEnd = userOnly.ContentSpans[^1].End;
        return (example.Text, endOfTurn, userOnly.Text[userEnd..]);
    }
}
