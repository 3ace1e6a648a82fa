using System.Text;
using FineTune.Core.Diagnostics;
using FineTune.Data.Readers;

namespace FineTune.Data.Formats;

/// <summary>
/// A <c>Prompt</c>/<c>Response</c> template of the <c>columns</c> format: text with <c>{column}</c>
/// fields; a part in <c>[[...]]</c> is dropped whole when any field inside it is empty or missing
/// (<c>[[Their age is {Age}.]]</c> disappears for a passenger without an age). <c>{{</c> and
/// <c>}}</c> stand for literal braces.
/// </summary>
internal sealed class PromptTemplate
{
    private abstract record Part;
    private sealed record Literal(string Text) : Part;
    private sealed record Field(string Name) : Part;
    private sealed record Optional(IReadOnlyList<Part> Parts) : Part;

    private readonly IReadOnlyList<Part> _parts;

    private PromptTemplate(string source, IReadOnlyList<Part> parts)
    {
        Source = source;
        _parts = parts;
    }

    /// <summary>The template as written in the metadata.</summary>
    public string Source { get; }

    /// <summary>Every column the template refers to, in order of first use.</summary>
    public IReadOnlyList<string> Fields => Flatten(_parts).OfType<Field>().Select(f => f.Name).Distinct().ToList();

    /// <summary>Columns used outside any <c>[[...]]</c>: a row lacking one is an error, not a dropped part.</summary>
    public IReadOnlyList<string> RequiredFields => _parts.OfType<Field>().Select(f => f.Name).Distinct().ToList();

    /// <summary>Parses a template; <paramref name="metadataName"/> and <paramref name="file"/> locate errors.</summary>
    public static PromptTemplate Parse(string source, string metadataName, string file)
    {
        var top = new List<Part>();
        List<Part>? optional = null;
        var literal = new StringBuilder();
        void FlushLiteral()
        {
            if (literal.Length == 0) return;
            (optional ?? top).Add(new Literal(literal.ToString()));
            literal.Clear();
        }
        FineTuneException Error(string what) =>
            new(DataErrors.UnbalancedOptional, $"{metadataName} template \"{source}\": {what}.", file);

        for (var i = 0; i < source.Length; i++)
        {
            var c = source[i];
            var next = i + 1 < source.Length ? source[i + 1] : '\0';
            if (c == '[' && next == '[')
            {
                if (optional is not null) throw Error($"'[[' at position {i + 1} opens an optional part inside another");
                FlushLiteral();
                optional = [];
                i++;
            }
            else if (c == ']' && next == ']' && optional is not null)
            {
                FlushLiteral();
                top.Add(new Optional(optional));
                optional = null;
                i++;
            }
            else if (c == '{' && next == '{') { literal.Append('{'); i++; }
            else if (c == '}' && next == '}') { literal.Append('}'); i++; }
            else if (c == '{')
            {
                var end = source.IndexOf('}', i + 1);
                if (end < 0) throw Error($"'{{' at position {i + 1} has no closing '}}' (write '{{{{' for a literal brace)");
                var name = source[(i + 1)..end].Trim();
                if (name.Length == 0) throw Error($"empty field '{{}}' at position {i + 1}");
                FlushLiteral();
                (optional ?? top).Add(new Field(name));
                i = end;
            }
            else literal.Append(c);
        }
        if (optional is not null) throw Error("a '[[' has no closing ']]'");
        FlushLiteral();
        return new PromptTemplate(source, top);
    }

    /// <summary>Fills the template from a row.</summary>
    public string Render(DatasetRow row, string metadataName)
    {
        var sb = new StringBuilder();
        foreach (var part in _parts)
        {
            switch (part)
            {
                case Literal l: sb.Append(l.Text); break;
                case Field f:
                    sb.Append(RowFields.Text(row, f.Name) ?? throw new FineTuneException(DataErrors.MissingField,
                        $"{row.SheetPrefix}Row has no '{f.Name}' field, used by the {metadataName} template outside [[...]]; its fields are: {string.Join(", ", RowFields.Names(row))}.",
                        row.File, row.Line, 1));
                    break;
                case Optional o:
                    var values = o.Parts.OfType<Field>().Select(f => RowFields.Text(row, f.Name)).ToList();
                    if (values.Any(string.IsNullOrWhiteSpace)) break;
                    var k = 0;
                    foreach (var inner in o.Parts) sb.Append(inner is Literal il ? il.Text : values[k++]);
                    break;
            }
        }
        return sb.ToString();
    }

    private static IEnumerable<Part> Flatten(IEnumerable<Part> parts) =>
        parts.SelectMany(p => p is Optional o ? o.Parts : [p]);
}
