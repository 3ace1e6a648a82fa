namespace FineTune.Cli.Hub;

/// <summary>Error codes of base models by Hugging Face id (docs/errors.md, FT3042–FT3052).</summary>
internal static class HubErrors
{
    /// <summary>401/403 or X-Error-Code GatedRepo: the licence is not accepted or no token was sent.</summary>
    public const string Gated = "FT3042";
    /// <summary>404 / RepoNotFound: no such model (or private and no access).</summary>
    public const string RepoNotFound = "FT3043";
    /// <summary>RevisionNotFound: the branch, tag or commit does not exist.</summary>
    public const string RevisionNotFound = "FT3044";
    /// <summary>The hub (or HF_ENDPOINT) cannot be reached and the cache cannot answer.</summary>
    public const string Unreachable = "FT3045";
    /// <summary>The repository has weights only as pickles (.bin/.pth), which are not loaded.</summary>
    public const string PickleOnly = "FT3046";
    /// <summary>HF_HUB_OFFLINE=1 and the cache lacks the revision or a file.</summary>
    public const string NotCachedOffline = "FT3047";
    /// <summary>A downloaded file's SHA-256 or size differs from what the hub announced, twice.</summary>
    public const string HashMismatch = "FT3048";
    /// <summary>BaseModel is neither a folder nor a valid id.</summary>
    public const string InvalidId = "FT3049";
    /// <summary>The hub answered without the metadata a download needs (X-Repo-Commit, ETag), or another HTTP error.</summary>
    public const string BadResponse = "FT3050";
}
