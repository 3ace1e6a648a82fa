using System.Text.RegularExpressions;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Hub;

/// <summary>A Hugging Face model id, <c>org/name</c>, with an optional <c>@revision</c> (branch, tag or commit).</summary>
internal sealed partial record HubModelId(string Repo, string Revision)
{
    public const string DefaultRevision = "main";

    /// <summary>Whether <paramref name="text"/> has the shape of a hub id (a folder path never has '@' or only two plain segments... callers check folders first).</summary>
    public static bool Looks(string text) => Shape().IsMatch(text);

    public static HubModelId Parse(string text)
    {
        var m = Shape().Match(text.Trim());
        if (!m.Success)
            throw new FineTuneException(HubErrors.InvalidId,
                $"'{text}' is neither a model folder nor a Hugging Face model id; an id looks like Qwen/Qwen2.5-0.5B-Instruct, optionally @revision (a branch, tag or commit).");
        return new HubModelId(m.Groups["repo"].Value, m.Groups["rev"].Success ? m.Groups["rev"].Value : DefaultRevision);
    }

    /// <summary>The cache folder name: <c>models--org--name</c>.</summary>
    public string CacheFolderName => "models--" + Repo.Replace("/", "--", StringComparison.Ordinal);

    public bool RevisionIsCommit => CommitHash().IsMatch(Revision);

    public override string ToString() => Revision == DefaultRevision ? Repo : $"{Repo}@{Revision}";

    public static bool IsCommit(string text) => CommitHash().IsMatch(text);

    // Hub repo names: letters, digits, '-', '_', '.', at most 96 characters per part; revisions may hold '/' (refs/pr/1).
    [GeneratedRegex(@"^(?<repo>[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})(@(?<rev>[A-Za-z0-9_.\-/]+))?$")]
    private static partial Regex Shape();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHash();
}
