namespace FineTune.Ollama;

/// <summary>
/// The FT5xxx codes of this library, one per cause; each is listed with its fix in docs/errors.md.
/// </summary>
public static class OllamaErrorCodes
{
    /// <summary>A Modelfile line is not valid Modelfile syntax.</summary>
    public const string ModelfileSyntax = "FT5001";
    /// <summary>A text cannot be written into a Modelfile so that Ollama reads it back unchanged.</summary>
    public const string UnrepresentableText = "FT5002";
    /// <summary>An unknown PARAMETER name, or a value of the wrong type.</summary>
    public const string InvalidParameter = "FT5003";
    /// <summary>The Ollama host (<c>--host</c>, <c>OllamaHost</c>, <c>OLLAMA_HOST</c>) is missing or malformed.</summary>
    public const string InvalidHost = "FT5004";
    /// <summary>The model name or tag does not follow Ollama's naming rules.</summary>
    public const string InvalidModelName = "FT5005";
    /// <summary>The Ollama server could not be reached (refused, unknown host, timed out) after retries.</summary>
    public const string Unreachable = "FT5006";
    /// <summary>The server rejected an uploaded blob because its SHA-256 did not match.</summary>
    public const string DigestRejected = "FT5007";
    /// <summary>The server answered with an error (its text is in the message).</summary>
    public const string ServerError = "FT5008";
    /// <summary>The server refused the request's credentials (HTTP 401/403).</summary>
    public const string Unauthorized = "FT5009";
    /// <summary>A file named by the Modelfile or a command option does not exist.</summary>
    public const string FileNotFound = "FT5010";
    /// <summary>The created model is not what was sent (checked with <c>/api/show</c>).</summary>
    public const string VerificationFailed = "FT5011";
    /// <summary>The Modelfile has no FROM line.</summary>
    public const string MissingFrom = "FT5012";
    /// <summary>The Modelfile or options ask for something this tool does not publish (several FROM lines, DRAFT, a folder).</summary>
    public const string Unsupported = "FT5013";
    /// <summary>The published model cannot answer <c>/api/chat</c> (the smoke test after publishing).</summary>
    public const string SmokeTestFailed = "FT5014";
    /// <summary>Warning: the published model's reply hit the token limit instead of a stop token.</summary>
    public const string SmokeTestNoStop = "FT5015";
    /// <summary>Warning: the published model's reply contains the chat template's own markers.</summary>
    public const string SmokeTestMarkers = "FT5016";
    /// <summary>Warning: the published model answered with an empty reply.</summary>
    public const string SmokeTestEmpty = "FT5017";
}
