using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;

namespace FineTune.Data.Jinja;

/// <summary>What a rendering produced: the text, and the spans <c>{% generation %}</c> blocks marked.</summary>
/// <param name="Text">The rendered text.</param>
/// <param name="GenerationSpans">Ranges of <paramref name="Text"/> inside <c>{% generation %}</c> blocks, in order; empty when the template has none.</param>
public sealed record JinjaRendering(string Text, IReadOnlyList<TextSpan> GenerationSpans);

/// <summary>
/// A Jinja chat template, parsed once and rendered many times in a sandbox. It renders what
/// @huggingface/jinja (and so transformers' <c>apply_chat_template</c>, for what chat templates use)
/// renders: <c>trim_blocks</c> and <c>lstrip_blocks</c> on, whitespace control with <c>-</c>.
/// Errors are <see cref="FineTuneException"/>s FT1040-FT1044 naming the line and column.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly TemplateBody _program;
    private readonly string _source;
    private readonly JinjaSource _origin;

    private JinjaTemplate(string source, TemplateBody program, JinjaSource origin, bool hasGeneration)
    {
        _source = source;
        _program = program;
        _origin = origin;
        HasGenerationBlocks = hasGeneration;
    }

    /// <summary>The template text as given.</summary>
    public string Source => _source;

    /// <summary>True when the template marks assistant output with <c>{% generation %}</c>.</summary>
    public bool HasGenerationBlocks { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="FineTuneException">FT1040 for a syntax error, FT1041 for an unsupported statement.</exception>
    public static JinjaTemplate Parse(string source, JinjaSource? origin = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        origin ??= JinjaSource.Inline;
        var (text, map) = Preprocessor.Run(source);
        Exception Fail(string code, string message, int offset) => origin.Error(code, message, Position(source, offset));
        var tokens = Lexer.Tokenize(text, map, (message, at) => Fail(JinjaErrors.Syntax, message, at < map.Length ? map[at] : source.Length));
        var program = Parser.Parse(tokens, Fail);
        return new JinjaTemplate(source, program, origin, text.Contains(Preprocessor.GenerationStart));
    }

    /// <summary>
    /// Renders with the variables in <paramref name="context"/> (e.g. <c>messages</c>,
    /// <c>add_generation_prompt</c>, <c>bos_token</c>); <paramref name="now"/> is what
    /// <c>strftime_now</c> reports.
    /// </summary>
    /// <exception cref="FineTuneException">FT1041 (unsupported filter, test or method), FT1042 (the template
    /// raised or failed), FT1043 (a sandbox limit), FT1044 (a refused attribute).</exception>
    public JinjaRendering Render(IReadOnlyDictionary<string, object?> context, DateTimeOffset now, SandboxLimits? limits = null)
    {
        var interpreter = new Interpreter(limits ?? SandboxLimits.Default);
        var env = new Environment();
        Globals.Install(env, interpreter, now);
        foreach (var (key, value) in context) env.Set(key, JinjaValue.From(value));
        string output;
        try
        {
            output = interpreter.Run(_program, env);
        }
        catch (JinjaRuntimeException e)
        {
            throw _origin.Error(e.Code, e.Message, e.Offset >= 0 ? Position(_source, e.Offset) : (0, 0));
        }
        catch (InsufficientExecutionStackException)
        {
            throw _origin.Error(JinjaErrors.Limit, "Template nests too deeply", (0, 0));
        }
        return HasGenerationBlocks ? ExtractGeneration(output) : new JinjaRendering(output, []);
    }

    private static JinjaRendering ExtractGeneration(string output)
    {
        var sb = new System.Text.StringBuilder(output.Length);
        var spans = new List<TextSpan>();
        var start = -1;
        foreach (var c in output)
        {
            if (c == Preprocessor.GenerationStart) { start = sb.Length; continue; }
            if (c == Preprocessor.GenerationEnd)
            {
                if (start >= 0 && sb.Length > start) spans.Add(new TextSpan(start, sb.Length));
                start = -1;
                continue;
            }
            sb.Append(c);
        }
        return new JinjaRendering(sb.ToString(), spans);
    }

    private static (int Line, int Column) Position(string source, int offset)
    {
        offset = Math.Clamp(offset, 0, source.Length);
        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < offset; i++)
            if (source[i] == '\n') { line++; lineStart = i + 1; }
        return (line, offset - lineStart + 1);
    }
}
