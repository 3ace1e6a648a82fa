namespace FineTune.Data;

/// <summary>
/// <c>ConversationExtension="N"</c>: merges N randomly chosen single-turn rows into one multi-turn
/// conversation, so a single-turn dataset teaches multi-turn chat. Every row is used exactly once;
/// the last conversation gets the remainder when the count is not a multiple of N.
/// </summary>
public static class ConversationExtension
{
    /// <summary>Groups <paramref name="conversations"/> N at a time in an order given by <paramref name="seed"/>.</summary>
    public static IReadOnlyList<Conversation> Extend(IReadOnlyList<Conversation> conversations, int n, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        if (n == 1) return conversations;
        var order = SeededShuffle.Permutation(conversations.Count, seed);
        var result = new List<Conversation>();
        for (var start = 0; start < order.Length; start += n)
        {
            var group = order.Skip(start).Take(n).Select(i => conversations[i]).ToList();
            var first = group[0];
            var systems = first.Messages.Where(m => m.Role == Role.System).ToList();
            var messages = new List<Message>(systems);
            foreach (var c in group)
            {
                foreach (var m in c.Messages)
                {
                    // The shared system prompt once; a different one is kept (templates put all system text first).
                    if (m.Role == Role.System && systems.Contains(m)) continue;
                    messages.Add(m);
                }
            }
            result.Add(new Conversation(messages, first.SourceFile, first.SourceLine));
        }
        return result;
    }
}
