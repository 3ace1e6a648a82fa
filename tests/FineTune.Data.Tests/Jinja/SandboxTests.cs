using FineTune.Core.Diagnostics;
using FineTune.Data.Jinja;

namespace FineTune.Data.Tests.Jinja;

/// <summary>
/// Chat templates come from downloaded repositories: a hostile or broken one must fail the format
/// step with an FT code naming the problem, never hang the build or exhaust memory.
/// </summary>
public sealed class SandboxTests
{
    private static readonly Dictionary<string, object?> Context = new()
    {
        ["messages"] = new List<object?> { new Dictionary<string, object?> { ["role"] = "user", ["content"] = "hi" } },
    };

    public static readonly TheoryData<string, string, string> Hostile = new()
    {
        { "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", JinjaErrors.Limit, "macro calls" },
        { "{% for i in range(1000000000) %}x{% endfor %}", JinjaErrors.Limit, "iterations" },
        { "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", JinjaErrors.Limit, "iterations" },
        { "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", JinjaErrors.Limit, "characters" },
        { "{% for i in range(400000) %}yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy{% endfor %}", JinjaErrors.Limit, "characters" },
        { "{{ messages.__class__ }}", JinjaErrors.Forbidden, "__class__" },
        { "{{ ''['__class__']['__mro__'] }}", JinjaErrors.Forbidden, "__class__" },
        { "{% set ns = namespace() %}{% set ns.__dict__ = 1 %}", JinjaErrors.Forbidden, "__dict__" },
        { "{{ messages | map(attribute='__class__') | list }}", JinjaErrors.Forbidden, "__class__" },
        { "{{ " + new string('(', 50_000) + "1" + new string(')', 50_000) + " }}", JinjaErrors.Limit, "nests" },
        { string.Concat(Enumerable.Repeat("{% if true %}", 5_000)) + string.Concat(Enumerable.Repeat("{% endif %}", 5_000)), JinjaErrors.Limit, "nests" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task A_hostile_template_fails_with_an_ft_code_instead_of_hanging(string source, string code, string mentions)
    {
        // A guard against a hang, not a timing assertion: the limits stop each of these long before.
        var run = Task.Run(() => Assert.Throws<FineTuneException>(() => JinjaTemplate.Parse(source).Render(Context, DateTimeOffset.UnixEpoch)));
        var e = await run.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(code, e.Code);
        Assert.Contains(mentions, e.Message);
    }

    [Fact]
    public void Time_is_bounded_even_when_every_other_limit_holds()
    {
        var limits = new SandboxLimits { Timeout = TimeSpan.Zero };
        var e = Assert.Throws<FineTuneException>(() => JinjaTemplate.Parse("{% for i in range(3) %}{% endfor %}").Render(Context, DateTimeOffset.UnixEpoch, limits));
        Assert.Equal(JinjaErrors.Limit, e.Code);
        Assert.Contains("longer than", e.Message);
    }

    public static readonly TheoryData<string, string, string, int, int> Broken = new()
    {
        { "line one\n{{ messages | wordwrap }}", JinjaErrors.Unsupported, "filter 'wordwrap'", 2, 13 },
        { "{% for m in messages %}\n  {% include 'other.jinja' %}\n{% endfor %}", JinjaErrors.Unsupported, "{% include %}", 2, 6 },
        { "{{ 1 is sameas 1 }}", JinjaErrors.Unsupported, "is sameas", 1, 9 },
        { "{% if true %}\nno end", JinjaErrors.Syntax, "endif", 2, 1 },
        { "{{ messages[0].content.zfill(3) }}", JinjaErrors.Unsupported, "method 'zfill'", 1, 4 },
        { "{{ undefined_function(1) }}", JinjaErrors.Unsupported, "'undefined_function'", 1, 4 },
        { "\n\n  {{ raise_exception('Only user and assistant roles are supported!') }}", JinjaErrors.Render, "Only user and assistant roles are supported!", 3, 6 },
        { "{{ 'a' + }}", JinjaErrors.Syntax, "Unexpected", 1, 10 },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void An_unsupported_or_broken_template_names_the_construct_and_its_line_and_column(string source, string code, string mentions, int line, int column)
    {
        var file = Path.Combine(Path.GetTempPath(), "chat_template.jinja");
        var e = Assert.Throws<FineTuneException>(() =>
            JinjaTemplate.Parse(source, new JinjaSource(file, IsTemplateFile: true)).Render(Context, DateTimeOffset.UnixEpoch));
        Assert.Equal(code, e.Code);
        Assert.Contains(mentions, e.Message);
        Assert.Equal((file, line, column), (e.File, e.Line, e.Column));

        // Inside tokenizer_config.json the position is the template's, said in words.
        var config = Assert.Throws<FineTuneException>(() =>
            JinjaTemplate.Parse(source, new JinjaSource("tokenizer_config.json", IsTemplateFile: false)).Render(Context, DateTimeOffset.UnixEpoch));
        Assert.Contains($"chat template line {line}, column {column}", config.Message);
    }
}
