namespace FineTune.Ollama.Publishing;

/// <summary>How <see cref="OllamaClient"/> talks to a server.</summary>
public sealed record OllamaClientOptions
{
    /// <summary>The environment variable an API key is read from (sent as a bearer token).</summary>
    public const string ApiKeyVariable = "OLLAMA_API_KEY";

    /// <summary>Sent as <c>Authorization: Bearer</c>; never logged or put in an error message.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Limit for one small request (HEAD a blob, show, copy, tags), per attempt.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Limit for one upload or create request, per attempt (large GGUF files take a while).</summary>
    public TimeSpan TransferTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Limit for opening a TCP connection, so a silent host fails fast.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Retries after a connection error, a timeout or a 5xx answer.</summary>
    public int MaxRetries { get; init; } = 3;

    /// <summary>Delay before the first retry; each next one doubles it.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Receives one line per retry (never contains the API key).</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Options with the API key taken from <c>OLLAMA_API_KEY</c> when set.</summary>
    public static OllamaClientOptions FromEnvironment(Action<string>? log = null) => new()
    {
        ApiKey = Environment.GetEnvironmentVariable(ApiKeyVariable) is { Length: > 0 } key ? key : null,
        Log = log,
    };
}
