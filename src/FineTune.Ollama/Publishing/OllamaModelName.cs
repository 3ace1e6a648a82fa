using FineTune.Core.Diagnostics;

namespace FineTune.Ollama.Publishing;

/// <summary>
/// A model name as Ollama accepts it (github.com/ollama/ollama, types/model/name.go):
/// <c>[host/][namespace/]model[:tag]</c>, each part 1 to 80 characters (host 350) that start with a
/// letter, digit or underscore and go on with letters, digits, <c>_</c>, <c>-</c> and <c>.</c>
/// (no <c>.</c> in a namespace, <c>:</c> only in a host). A missing tag means <c>latest</c>.
/// </summary>
public sealed record OllamaModelName(string Model, string Tag)
{
    /// <summary><c>model:tag</c>.</summary>
    public override string ToString() => $"{Model}:{Tag}";

    /// <summary>The same model with another tag.</summary>
    public OllamaModelName WithTag(string tag) => this with { Tag = tag };

    /// <summary>
    /// Parses and validates <paramref name="name"/>; a tag written as a SemVer version with build
    /// metadata (<c>1.2.0+abc</c>) is mapped with <see cref="TagFromVersion"/>. Throws FT5005.
    /// </summary>
    public static OllamaModelName Parse(string name)
    {
        var colon = name.LastIndexOf(':');
        string model = name, tag = "latest";
        if (colon > name.LastIndexOf('/'))
        {
            model = name[..colon];
            tag = TagFromVersion(name[(colon + 1)..]);
        }

        var parts = model.Split('/');
        if (parts.Length > 3) throw Invalid(name, "it has more than host/namespace/model");
        Check(name, tag, "tag", 80, allowDot: true, allowColon: false);
        Check(name, parts[^1], "model", 80, allowDot: true, allowColon: false);
        if (parts.Length >= 2) Check(name, parts[^2], "namespace", 80, allowDot: false, allowColon: false);
        if (parts.Length == 3) Check(name, parts[0], "host", 350, allowDot: true, allowColon: true);
        return new OllamaModelName(model, tag);
    }

    /// <summary>
    /// An Ollama tag for a SemVer version: <c>+</c> (build metadata, not allowed in a tag) becomes
    /// <c>_</c>, which SemVer never uses, so two different versions never share a tag.
    /// </summary>
    public static string TagFromVersion(string version) => version.Replace('+', '_');

    private static void Check(string name, string part, string kind, int maxLength, bool allowDot, bool allowColon)
    {
        if (part.Length == 0 || part.Length > maxLength)
            throw Invalid(name, $"its {kind} must be 1 to {maxLength} characters long");
        for (var i = 0; i < part.Length; i++)
        {
            var c = part[i];
            var ok = char.IsAsciiLetterOrDigit(c) || c == '_'
                || (i > 0 && (c == '-' || (c == '.' && allowDot) || (c == ':' && allowColon)));
            if (!ok)
                throw Invalid(name, $"its {kind} '{part}' has '{c}' at position {i + 1} " +
                    $"({kind} parts start with a letter, digit or '_' and contain only letters, digits, '_', '-'{(allowDot ? ", '.'" : "")})");
        }
    }

    private static FineTuneException Invalid(string name, string why) =>
        new(OllamaErrorCodes.InvalidModelName, $"'{name}' is not a valid Ollama model name: {why}. Expected [namespace/]model:tag, e.g. tweet-caps:1.0.0.");
}
