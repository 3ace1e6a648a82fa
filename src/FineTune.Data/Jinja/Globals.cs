using System.Globalization;
using System.Text.RegularExpressions;

namespace FineTune.Data.Jinja;

/// <summary>
/// The names every template sees: <c>true</c>/<c>false</c>/<c>none</c> (and title-case forms),
/// <c>namespace()</c>, <c>range()</c>, <c>raise_exception()</c> and <c>strftime_now()</c>.
/// </summary>
internal static partial class Globals
{
    [GeneratedRegex("%[YmdbBHM%]")]
    private static partial Regex StrftimeToken();

    public static void Install(Environment env, Interpreter it, DateTimeOffset now)
    {
        env.Set("namespace", new JinjaFunction("namespace", (args, _) =>
        {
            var positional = args.ToList();
            JinjaKeywordArguments? kwargs = null;
            if (positional.Count > 0 && positional[^1] is JinjaKeywordArguments kw) { kwargs = kw; positional.RemoveAt(positional.Count - 1); }
            if (positional.Count > 1) throw Interpreter.Error($"namespace expected at most 1 argument, got {positional.Count}");
            var entries = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
            if (positional.Count == 1)
            {
                switch (positional[0])
                {
                    case JinjaObject o: foreach (var (k, v) in o.Entries) entries[k] = v; break;
                    case JinjaArray a:
                        foreach (var pair in a.Items)
                        {
                            if (pair is not JinjaArray { Items: [JinjaString key, var value] }) throw Interpreter.Error("namespace expected a mapping or a list of (key, value) pairs");
                            entries[key.Value] = value;
                        }
                        break;
                    default: throw Interpreter.Error($"namespace cannot take a {positional[0].TypeName}");
                }
            }
            if (kwargs is not null) foreach (var (k, v) in kwargs.Entries) entries[k] = v;
            return new JinjaNamespace(entries);
        }));
        env.Set("false", JinjaBool.False);
        env.Set("true", JinjaBool.True);
        env.Set("none", JinjaNone.Instance);
        env.Set("False", JinjaBool.False);
        env.Set("True", JinjaBool.True);
        env.Set("None", JinjaNone.Instance);
        env.Set("raise_exception", new JinjaFunction("raise_exception", (args, _) =>
            throw new JinjaRuntimeException(JinjaErrors.Render, $"The chat template refused this conversation: {(args.Count > 0 ? Interpreter.Concat(args[0]) : "")}")));
        env.Set("range", new JinjaFunction("range", (args, _) =>
        {
            var n = args.Where(a => a is not JinjaKeywordArguments).Select(a => a is JinjaInt i ? i.Value : throw Interpreter.Error("range() takes integers")).ToList();
            var (start, stop, step) = n.Count switch
            {
                1 => (0L, n[0], 1L),
                2 => (n[0], n[1], 1L),
                3 => (n[0], n[1], n[2]),
                _ => throw Interpreter.Error("range() takes 1 to 3 integers"),
            };
            if (step == 0) throw Interpreter.Error("range() step must not be zero");
            var count = step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
            it.Tick(count);
            var items = new List<JinjaValue>((int)count);
            for (long i = start, k = 0; k < count; i += step, k++) items.Add(new JinjaInt(i));
            return new JinjaArray(items);
        }));
        env.Set("strftime_now", new JinjaFunction("strftime_now", (args, _) =>
        {
            if (args.FirstOrDefault() is not JinjaString format) throw Interpreter.Error("strftime_now() takes a format string");
            var en = CultureInfo.GetCultureInfo("en-US");
            return new JinjaString(StrftimeToken().Replace(format.Value, m => m.Value switch
            {
                "%Y" => now.Year.ToString(CultureInfo.InvariantCulture),
                "%m" => now.Month.ToString("00", CultureInfo.InvariantCulture),
                "%d" => now.Day.ToString("00", CultureInfo.InvariantCulture),
                "%b" => now.ToString("MMM", en),
                "%B" => now.ToString("MMMM", en),
                "%H" => now.Hour.ToString("00", CultureInfo.InvariantCulture),
                "%M" => now.Minute.ToString("00", CultureInfo.InvariantCulture),
                _ => "%",
            }));
        }));
    }
}
