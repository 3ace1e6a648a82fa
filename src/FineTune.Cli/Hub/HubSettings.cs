namespace FineTune.Cli.Hub;

/// <summary>
/// Where the hub is and where its cache lives, from the same environment variables huggingface_hub
/// reads, so a model downloaded by either is found by the other.
/// </summary>
internal sealed record HubSettings(Uri Endpoint, string CacheRoot, string? Token, bool Offline)
{
    public static HubSettings FromEnvironment(Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        string? Get(string name) => string.IsNullOrWhiteSpace(env(name)) ? null : env(name)!.Trim();
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var hfHome = Get("HF_HOME") ?? Path.Combine(Get("XDG_CACHE_HOME") ?? Path.Combine(home, ".cache"), "huggingface");
        var cache = Get("HF_HUB_CACHE") ?? Path.Combine(hfHome, "hub");
        var token = Get("HF_TOKEN");
        if (token is null)
        {
            var tokenFile = Get("HF_TOKEN_PATH") ?? Path.Combine(hfHome, "token");
            if (File.Exists(tokenFile) && File.ReadAllText(tokenFile).Trim() is { Length: > 0 } saved) token = saved;
        }
        var offline = Get("HF_HUB_OFFLINE") is { } o && o.ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";
        var endpoint = new Uri((Get("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/') + "/");
        return new HubSettings(endpoint, cache, token, offline);
    }
}
