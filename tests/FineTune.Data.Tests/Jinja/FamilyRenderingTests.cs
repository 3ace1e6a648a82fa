using FineTune.Core.Diagnostics;
using FineTune.Data.Jinja;

namespace FineTune.Data.Tests.Jinja;

/// <summary>
/// A user's base model brings its own chat template: our engine must render it exactly as
/// @huggingface/jinja does, for every family and conversation in the fixtures, and refuse the
/// conversations the template itself refuses.
/// </summary>
public sealed class FamilyRenderingTests
{
    public static IEnumerable<object[]> Families() => TemplateFamilies.Names();

    [Theory]
    [MemberData(nameof(Families))]
    public void Renders_every_conversation_byte_for_byte_like_huggingface_jinja(string family)
    {
        var f = TemplateFamilies.Get(family);
        Assert.True(f.Cases.Count >= 20, $"{family}: only {f.Cases.Count} conversations");
        var template = JinjaTemplate.Parse(f.Template);
        for (var i = 0; i < f.Cases.Count; i++)
        {
            var c = f.Cases[i];
            if (c.Output is not null)
            {
                var ours = template.Render(f.ContextFor(c), f.Now).Text;
                Assert.True(c.Output == ours, $"{family} case {i}:\nexpected {System.Text.Json.JsonSerializer.Serialize(c.Output)}\n     got {System.Text.Json.JsonSerializer.Serialize(ours)}");
            }
            else
            {
                var e = Assert.Throws<FineTuneException>(() => template.Render(f.ContextFor(c), f.Now));
                Assert.Equal(JinjaErrors.Render, e.Code);
            }
        }
    }
}
