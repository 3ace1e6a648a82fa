namespace FineTune.Ollama.Publishing;

/// <summary>What a publish did.</summary>
/// <param name="Model">The name the model was created under (<c>model:tag</c>).</param>
/// <param name="Uploaded">Digests of the blobs that were uploaded.</param>
/// <param name="AlreadyPresent">Digests of the blobs the server already had.</param>
/// <param name="TaggedLatest">True when <c>model:latest</c> was also set.</param>
public sealed record PublishResult(string Model, IReadOnlyList<string> Uploaded, IReadOnlyList<string> AlreadyPresent, bool TaggedLatest);
