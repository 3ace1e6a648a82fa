namespace FineTune.Cli.Chat;

/// <summary>What chat needs from a model: the next-token distribution after a sequence.</summary>
public interface ILanguageModel
{
    /// <summary>Vocabulary size: the length of every logits vector.</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence the model takes (max_position_embeddings).</summary>
    int ContextLength { get; }

    /// <summary>Logits over the vocabulary for the token that follows <paramref name="ids"/>; the array may be reused by the next call.</summary>
    float[] NextTokenLogits(IReadOnlyList<int> ids);
}
