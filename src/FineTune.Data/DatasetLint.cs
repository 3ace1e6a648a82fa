using FineTune.Core.Datasets;

namespace FineTune.Data;

/// <summary>Dataset checks that do not stop the build but usually mean a data mistake.</summary>
internal static class DatasetLint
{
    /// <summary>A class must hold at least this share of a columns dataset's rows to count as dominating.</summary>
    public const double ImbalanceShare = 0.8;

    /// <summary>Below this many rows a skewed output distribution says little.</summary>
    public const int ImbalanceMinRows = 10;

    /// <summary>More distinct outputs than this are free text, not classes.</summary>
    public const int ImbalanceMaxClasses = 20;

    public static IEnumerable<DatasetWarning> EmptyReplies(Conversation c)
    {
        var n = c.Messages.Count(m => m.Role == Role.Assistant && string.IsNullOrWhiteSpace(m.Content));
        if (n > 0)
            yield return new DatasetWarning(DataErrors.EmptyReply,
                n == 1 ? "The assistant reply is empty; the model learns to answer with nothing." : $"{n} assistant replies are empty; the model learns to answer with nothing.",
                c.SourceFile, c.SourceLine);
    }

    public static IEnumerable<DatasetWarning> Duplicates(IEnumerable<(FormattedExample Example, Conversation Source)> examples)
    {
        var seen = new Dictionary<string, Conversation>(StringComparer.Ordinal);
        foreach (var (example, source) in examples)
        {
            if (seen.TryGetValue(example.Text, out var first))
                yield return new DatasetWarning(DataErrors.DuplicateExample,
                    $"Duplicate example: same text as {Location(first)}; duplicates weigh an example twice and leak between train and validation.",
                    source.SourceFile, source.SourceLine);
            else seen[example.Text] = source;
        }
    }

    public static IEnumerable<DatasetWarning> ClassImbalance(IReadOnlyList<string> outputs, string file)
    {
        if (outputs.Count < ImbalanceMinRows) yield break;
        var classes = outputs.GroupBy(o => o.Trim(), StringComparer.Ordinal).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (classes.Count > ImbalanceMaxClasses) yield break;
        var top = classes[0];
        if (top.Count() < ImbalanceShare * outputs.Count) yield break;
        var counts = string.Join(", ", classes.Select(g => $"'{g.Key}': {g.Count()}"));
        yield return new DatasetWarning(DataErrors.ClassImbalance,
            $"Output '{top.Key}' is {top.Count() * 100 / outputs.Count}% of {outputs.Count} rows ({counts}); the model may learn to always answer it. Balance the classes or add examples.",
            file, 0);
    }

    private static string Location(Conversation c) =>
        c.SourceFile is null ? "an earlier example" : $"{Path.GetFileName(c.SourceFile)} line {c.SourceLine}";
}
