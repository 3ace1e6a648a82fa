using FineTune.Core.Diagnostics;

namespace FineTune.Data.Jinja;

/// <summary>The FT104x codes of the Jinja engine (each listed with cause and fix in docs/errors.md).</summary>
public static class JinjaErrors
{
    /// <summary>The template is not valid Jinja (a tag is not closed, an expression is malformed).</summary>
    public const string Syntax = "FT1040";
    /// <summary>The template uses a statement, filter, test or method the engine does not support.</summary>
    public const string Unsupported = "FT1041";
    /// <summary>Rendering failed: the template called <c>raise_exception</c>, or an operation met values it cannot take.</summary>
    public const string Render = "FT1042";
    /// <summary>The template exceeded a sandbox limit (loop iterations, recursion depth, output size, time).</summary>
    public const string Limit = "FT1043";
    /// <summary>The template reached for an attribute the sandbox refuses (<c>__class__</c> and other dunder names).</summary>
    public const string Forbidden = "FT1044";
}

/// <summary>Where a template came from, so errors point at the right place.</summary>
/// <param name="File">The file holding the template (a .jinja file or tokenizer_config.json), or null.</param>
/// <param name="IsTemplateFile">True when <paramref name="File"/> is the template itself, so template
/// lines are file lines; false when the template is a string inside another file (tokenizer_config.json).</param>
public sealed record JinjaSource(string? File, bool IsTemplateFile)
{
    /// <summary>A template given as a string in code or a test.</summary>
    public static readonly JinjaSource Inline = new(null, false);

    internal FineTuneException Error(string code, string message, (int Line, int Column) at)
    {
        if (IsTemplateFile) return new FineTuneException(code, message, File, at.Line, at.Column);
        var where = at.Line > 0 ? $" (chat template line {at.Line}, column {at.Column})" : "";
        return new FineTuneException(code, message + where, File);
    }
}
