using FineTune.Engine.Model;

/// <summary>The model shapes of the peer script (/work/shared/bench/hf_peft_lora.py), as ModelConfigs.</summary>
internal static class Shapes
{
    public static ModelConfig Get(string name) => name switch
    {
        "smollm2-135m" => Llama(576, 1536, 30, 9, 3, 49152, tie: true, theta: 100000),
        "llama3.2-1b" => Llama(2048, 8192, 16, 32, 8, 128256, tie: true, theta: 500000),
        "llama3.1-8b" => Llama(4096, 14336, 32, 32, 8, 128256, tie: false, theta: 500000),
        // Not in the peer script (its bf16 weights alone, 141 GB, do not fit one GPU): QLoRA's showcase.
        "llama3.3-70b" => Llama(8192, 28672, 80, 64, 8, 128256, tie: false, theta: 500000),
        "gemma3-1b" => Gemma3_1B(),
        _ => throw new ArgumentException($"Unknown shape '{name}'."),
    };

    public static readonly string[] Names = ["smollm2-135m", "llama3.2-1b", "llama3.1-8b", "llama3.3-70b", "gemma3-1b"];

    public static string NameOf(ModelConfig model) => Names.First(n => Get(n).HiddenSize == model.HiddenSize && Get(n).NumLayers == model.NumLayers);

    private static ModelConfig Llama(int hidden, int inter, int layers, int heads, int kv, int vocab, bool tie, double theta) => new()
    {
        ModelType = "llama", HiddenSize = hidden, IntermediateSize = inter, NumLayers = layers, NumHeads = heads, NumKvHeads = kv,
        HeadDim = hidden / heads, VocabSize = vocab, TieWordEmbeddings = tie, RopeTheta = theta, RmsNormEps = 1e-5, MaxPositionEmbeddings = 8192,
    };

    /// <summary>Gemma 3 1B as released: head_dim 256, one kv head, 512-token windows on five of every six layers.</summary>
    private static ModelConfig Gemma3_1B() => new()
    {
        ModelType = "gemma3_text", HiddenSize = 1152, IntermediateSize = 6912, NumLayers = 26, NumHeads = 4, NumKvHeads = 1, HeadDim = 256,
        VocabSize = 262144, TieWordEmbeddings = true, RopeTheta = 1_000_000, RopeLocalTheta = 10_000, RmsNormEps = 1e-6, MaxPositionEmbeddings = 32768,
        QkNorm = true, EmbeddingScale = MathF.Sqrt(1152), NormWeightOffset = true, SandwichNorms = true, Activation = GateActivation.GeluTanh,
        QueryPreAttnScalar = 256, SlidingWindow = 512, SlidingLayers = Enumerable.Range(0, 26).Select(l => (l + 1) % 6 != 0).ToArray(),
    };
}
