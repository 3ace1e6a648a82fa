using FineTune.Engine.Inference;

namespace FineTune.Cli.Chat;

/// <summary>
/// The engine's KV-cached <see cref="LlamaDecoder"/> as a chat model. Each call feeds only the
/// tokens after the longest prefix already in the cache, so a reply costs one token of work per
/// token, and a multi-turn conversation re-uses the cache of the history it shares.
/// </summary>
public sealed class EngineLanguageModel(LlamaDecoder decoder) : ILanguageModel
{
    private readonly DecoderSession _session = decoder.CreateSession();
    private readonly List<int> _fed = [];

    /// <inheritdoc />
    public int VocabSize => decoder.Config.VocabSize;

    /// <inheritdoc />
    public int ContextLength => decoder.Config.MaxPositionEmbeddings;

    /// <inheritdoc />
    public float[] NextTokenLogits(IReadOnlyList<int> ids)
    {
        if (ids.Count == 0) throw new ArgumentException("The sequence is empty.", nameof(ids));
        var shared = 0;
        while (shared < _fed.Count && shared < ids.Count && _fed[shared] == ids[shared]) shared++;
        // The last token's logits are not kept, so an already-cached sequence re-feeds its last token.
        if (shared == ids.Count) shared--;
        _session.Truncate(shared);
        _fed.RemoveRange(shared, _fed.Count - shared);
        var rest = new int[ids.Count - shared];
        for (var i = 0; i < rest.Length; i++) rest[i] = ids[shared + i];
        _fed.AddRange(rest);
        return _session.Append(rest);
    }
}
