namespace FineTune.Engine.Model;

/// <summary>
/// What one decoder layer's forward pass keeps for its backward pass. With gradient checkpointing a
/// single set is shared by all layers and refilled by recomputing the layer's forward pass.
/// </summary>
internal sealed class LayerActivations
{
    public float[] Norm1 = [], Rstd1 = [], Q = [], K = [], V = [], QPre = [], KPre = [], QRstd = [], KRstd = [];
    public float[] Probs = [], Att = [], X1 = [], Norm2 = [], Rstd2 = [], Gate = [], Up = [], Act = [];
    /// <summary>Gemma 3's sandwich norms: the attention and MLP outputs before their norms, and those norms' 1/rms.</summary>
    public float[] AttOut = [], AttOutRstd = [], MlpOut = [], MlpOutRstd = [];
    /// <summary>Scaled LoRA intermediates scale·(A x) per projection.</summary>
    public readonly float[][] LoraHidden = new float[Projections.All.Length][];

    public LayerActivations()
    {
        for (var i = 0; i < LoraHidden.Length; i++) LoraHidden[i] = [];
    }

    public void Ensure(ModelConfig c, int tokens, int probs, int rank)
    {
        Grow(ref Norm1, tokens * c.HiddenSize); Grow(ref Rstd1, tokens);
        Grow(ref Q, tokens * c.QDim); Grow(ref K, tokens * c.KvDim); Grow(ref V, tokens * c.KvDim);
        if (c.QkNorm)
        {
            Grow(ref QPre, tokens * c.QDim); Grow(ref KPre, tokens * c.KvDim);
            Grow(ref QRstd, tokens * c.NumHeads); Grow(ref KRstd, tokens * c.NumKvHeads);
        }
        if (c.SandwichNorms)
        {
            Grow(ref AttOut, tokens * c.HiddenSize); Grow(ref AttOutRstd, tokens);
            Grow(ref MlpOut, tokens * c.HiddenSize); Grow(ref MlpOutRstd, tokens);
        }
        Grow(ref Probs, probs); Grow(ref Att, tokens * c.QDim); Grow(ref X1, tokens * c.HiddenSize);
        Grow(ref Norm2, tokens * c.HiddenSize); Grow(ref Rstd2, tokens);
        Grow(ref Gate, tokens * c.IntermediateSize); Grow(ref Up, tokens * c.IntermediateSize); Grow(ref Act, tokens * c.IntermediateSize);
        for (var i = 0; i < LoraHidden.Length; i++) Grow(ref LoraHidden[i], tokens * rank);
    }

    internal static void Grow(ref float[] a, int size)
    {
        if (a.Length < size) a = new float[size];
    }
}
