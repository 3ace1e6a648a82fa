using System.Text.Json.Nodes;
using FineTune.Data.Jinja;
using FineTune.Data.Tests.Support;

namespace FineTune.Data.Tests.Jinja;

/// <summary>
/// Each language feature chat templates use, rendered by our engine and by @huggingface/jinja
/// (node, run by the test) on the same input: the outputs must be equal byte for byte.
/// </summary>
public sealed class FeatureTests
{
    private static readonly JsonObject Context = new()
    {
        ["messages"] = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = " Be brief. " },
            new JsonObject { ["role"] = "user", ["content"] = "Hi\nthere" },
            new JsonObject { ["role"] = "assistant", ["content"] = "<think>hmm</think>\n\nHello!", ["tool_calls"] = new JsonArray(
                new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = new JsonObject { ["city"] = "Paris", ["days"] = 3 } } }) },
            new JsonObject { ["role"] = "user", ["content"] = "Bye 🇫🇷" }),
        ["tools"] = new JsonArray(new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = "get_weather", ["description"] = "Weather \"now\"", ["parameters"] = new JsonObject { ["type"] = "object", ["required"] = new JsonArray("city") } },
        }),
        ["add_generation_prompt"] = true,
        ["bos_token"] = "<s>",
        ["eos_token"] = "</s>",
        ["n"] = 7,
        ["f"] = 2.5,
        ["flag"] = false,
        ["nothing"] = null,
        ["text"] = "  Hello, World! héllo-wörld  ",
    };

    private static readonly string[] Templates =
    [
        // loops, loop variables, filters on the loop, else, break/continue
        "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ m.role }}|{% endfor %}",
        "{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m['role'][0] }}{% if loop.previtem is defined %}<{{ loop.previtem.role }}{% endif %}{% endfor %}",
        "{% for x in [] %}x{% else %}empty{% endfor %}{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
        "{% for k, v in {'a': 1, 'b': [1, 2]}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}",
        "{% for i in range(2, 12, 3) %}{{ i }},{% endfor %}{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}",
        // if/elif/else, set, namespace, block set, scoping
        "{% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %}{% if not flag and nothing is none %}!{% endif %}",
        "{% set ns = namespace(found=false, count=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.count }}",
        "{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}{% if true %}{% set y = 5 %}{% endif %}{{ y }}",
        "{% set body %}\n  Block {{ n }}\n{% endset %}[{{ body }}]{% set a, b = [1, 'two'] %}{{ a }}{{ b }}",
        // macros and call blocks
        "{% macro tag(name, value='v', sep=':') %}<{{ name }}{{ sep }}{{ value }}>{% endmacro %}{{ tag('a') }}{{ tag('b', 'c') }}{{ tag('d', sep='=') }}",
        "{% macro wrap(t) %}[{{ t }}|{{ caller() }}]{% endmacro %}{% call wrap('x') %}inside {{ n }}{% endcall %}",
        "{% macro render(v) %}{% if v is mapping %}{% for k, x in v.items() %}{{ k }}:{{ render(x) }},{% endfor %}{% elif v is iterable and v is not string %}{% for x in v %}{{ render(x) }};{% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(tools[0]) }}",
        // slicing, indexing, membership, comparisons, arithmetic
        "{{ messages[1:] | length }}{{ messages[-1].content }}{{ text[2:7] }}{{ text[::-1] }}{{ 'abc'[1] }}{{ [1, 2, 3, 4][::2] }}{{ messages[0:-1][-1].role }}",
        "{{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 2 in [1, 2] }}{{ 'role' in messages[0] }}{{ 'x' in nothing_defined }}{{ 1 == 1.0 }}{{ 'a' != 'b' }}",
        "{{ n + 1 }} {{ n - 10 }} {{ n * f }} {{ n / 2 }} {{ n // 2 }} {{ n % 3 }} {{ 2 ** 10 }} {{ -n }} {{ f * 2 }} {{ 'a' ~ n ~ f }} {{ 'x' + 'y' }}",
        "{{ n if n > 3 else 'no' }}{{ 'yes' if flag }}|{{ flag or 'fallback' }}{{ n and 'both' }}{{ nothing or 'none' }}",
        // is-tests
        "{{ nothing is none }}{{ undefinedthing is defined }}{{ text is string }}{{ tools is iterable }}{{ tools[0] is mapping }}{{ n is number }}{{ n is integer }}{{ flag is boolean }}{{ n is odd }}{{ 4 is even }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ range is callable }}{{ flag is false }}",
        // string methods
        "[{{ text.strip() }}][{{ text.lstrip() }}][{{ text.rstrip() }}][{{ text.upper() }}][{{ text.lower() }}][{{ text.title() }}][{{ 'hello world'.capitalize() }}]",
        "{{ text.strip().startswith('Hello') }}{{ text.strip().endswith(('x', '  ')) }}{{ text.split(',') }}{{ text.split() }}{{ 'a,b,c'.split(',', 1) }}{{ text.replace('l', 'L') }}{{ 'aaa'.replace('a', 'b', 2) }}",
        "{{ messages[2].content.split('</think>')[-1].lstrip('\\n') }}|{{ messages[2].content.split('</think>')[0].split('<think>')[-1] }}",
        // dict methods
        "{{ messages[0].get('role') }}{{ messages[0].get('missing', 'dflt') }}{{ messages[0].get('missing') }}{{ tools[0].keys() }}{{ tools[0]['function'].values() | length }}",
        // filters
        "[{{ text | trim }}][{{ text | length }}][{{ messages | length }}][{{ text | upper }}][{{ text | lower }}][{{ 'ab cd' | title }}][{{ 'ab cd' | capitalize }}][{{ text | replace('o', '0') }}]",
        "{{ messages | first }}{{ (messages | last).role }}{{ [3, 1, 2] | sort }}{{ ['b', 'A', 'c'] | sort }}{{ [1, 2] | reverse }}{{ [1, 1, 2] | unique }}{{ messages | map(attribute='role') | join(', ') }}",
        "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | list }}{{ messages | selectattr('tool_calls') | list | length }}{{ messages | selectattr('tool_calls', 'defined') | list | length }}",
        "{{ undefinedthing | default('d') }}{{ nothing | default('d') }}{{ '' | default('e', true) }}{{ '42' | int + 1 }}{{ 'x' | int }}{{ 3.7 | int }}{{ n | string }}{{ flag | string }}{{ '3.5' | float }}{{ -3 | abs }}",
        "{{ tools | tojson }}\n{{ tools[0] | tojson(indent=4) }}\n{{ messages[2].tool_calls[0].function.arguments | tojson }}{{ 'é \"q\" \\n' | tojson }}{{ {'b': 1, 'a': [true, none, 2.5]} | tojson(indent=2) }}",
        "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}{{ 'é' | tojson(ensure_ascii=true) }}{{ [] | tojson(indent=2) }}{{ {} | tojson }}{{ [1, [2, {}]] | tojson(separators=[',', ':']) }}",
        "{{ text | safe }}{{ {'a': 1} | items | list }}{{ {'a': 1, 'b': 2} | length }}{{ 'line1\\nline2\\n\\nline3' | indent(2) }}|{{ 'a\\nb' | indent(3, true) }}",
        "{% filter upper %}shout {{ n }}{% endfilter %}{{ [1, 2, 3] | join('-') }}{{ 'abc' | join('.') }}{{ messages | map(attribute='missing', default='m') | join }}",
        // output of values, globals, comments, whitespace control
        "{{ n }} {{ f }} {{ 3.0 }} {{ flag }} {{ true }} {{ nothing }}|{{ [1, 'a', none] }} {{ {'k': 'v'} }} {{ namespace(a=1) }}",
        "{# comment #}a  {#- trimmed -#}  b\n  {%- if true -%}\n  c  \n  {%- endif %}\nd {{- ' e ' -}} f\n    {% if true %}\n    g\n    {% endif %}\nh",
        "{{ bos_token }}{%- for m in messages %}\n  {%- if m.role == 'user' %}\n    {{- '[U]' + m.content | trim + '[/U]' }}\n  {%- elif m.role == 'assistant' %}\n    {{- ' ' + m.content + eos_token }}\n  {%- endif %}\n{%- endfor %}\n",
        "{{ 'It''s' }}{{ \"say \\\"x\\\"\" }}{{ 'tab\\there' }}{{ '\\u00e9\\x41' }}{{ 'a' 'b' }}{{ (1, 2)[1] }}{{ (1) }}",
        "{% set d = {'a': {'b': [10, 20]}} %}{{ d.a.b[1] }}{{ d['a']['b'].length }}{{ d.a.missing }}{{ d.a.missing is defined }}{{ messages.0.role }}",
        "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set rest = messages[1:] %}{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}{{ sys | trim }}{% for m in rest %}{{ m['role'] | upper }}{% endfor %}",
        "{{ (messages | selectattr('role', 'equalto', 'user') | list)[-1].content }}{{ messages | map(attribute='content') | select_missing_is_error_free if false }}",
        "{%- set ns = namespace(last_user=-1) %}{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}{{ ns.last_user }}{{ ns }}",
    ];

    [Fact]
    public void Every_feature_renders_like_huggingface_jinja()
    {
        var cases = Templates.Select(t => (t, Context)).ToList();
        var expected = ContextRenderer.Render(cases);
        var failures = new List<string>();
        for (var i = 0; i < cases.Count; i++)
        {
            var template = cases[i].Item1;
            string ours;
            try
            {
                ours = JinjaTemplate.Parse(template).Render(ToDictionary(Context), DateTimeOffset.UnixEpoch).Text;
            }
            catch (Exception e)
            {
                ours = "ERROR " + e.Message;
            }
            var theirs = expected[i].Output ?? "ERROR " + expected[i].Error;
            if (expected[i].Error is not null && ours.StartsWith("ERROR", StringComparison.Ordinal)) continue;
            if (ours != theirs) failures.Add($"#{i} {template}\n  hf:   {System.Text.Json.JsonSerializer.Serialize(theirs)}\n  ours: {System.Text.Json.JsonSerializer.Serialize(ours)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    internal static Dictionary<string, object?> ToDictionary(JsonObject o) => o.ToDictionary(kv => kv.Key, kv => (object?)kv.Value?.DeepClone());
}

/// <summary>Renders (template, context) pairs with @huggingface/jinja through eng/template-fixtures/render-context.mjs.</summary>
internal static class ContextRenderer
{
    public static IReadOnlyList<(string? Output, string? Error)> Render(IReadOnlyList<(string Template, JsonObject Context)> cases)
    {
        var input = new JsonArray(cases.Select(c => (JsonNode)new JsonObject { ["template"] = c.Template, ["context"] = c.Context.DeepClone() }).ToArray());
        var stdout = ExternalTool.Run("node", [RepoPaths.Combine("eng", "template-fixtures", "render-context.mjs")], input.ToJsonString(), RepoPaths.Root,
            "Install Node.js and run `npm ci` in the repository root; .ci/run does both.");
        return JsonNode.Parse(stdout)!.AsArray().Select(r => (r!["output"]?.GetValue<string>(), r["error"]?.GetValue<string>())).ToList();
    }
}
