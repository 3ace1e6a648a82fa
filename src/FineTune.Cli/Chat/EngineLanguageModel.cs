using FineTune.Engine.Model;

namespace FineTune.Cli.Chat;

/// <summary>The engine's <see cref="LlamaModel"/> (base weights with the adapter merged) as a chat model.</summary>
public sealed class EngineLanguageModel(LlamaModel model) : ILanguageModel
{
    /// <inheritdoc />
    public int VocabSize => model.Config.VocabSize;

    /// <inheritdoc />
    public int ContextLength => model.Config.MaxPositionEmbeddings;

    /// <inheritdoc />
    public float[] NextTokenLogits(IReadOnlyList<int> ids)
    {
        // The engine's inference pass has no KV cache yet, so each token re-runs the whole sequence;
        // only the last row is needed.
        var all = model.Logits(ids.ToArray());
        var vocab = VocabSize;
        return all.AsSpan(all.Length - vocab, vocab).ToArray();
    }
}
