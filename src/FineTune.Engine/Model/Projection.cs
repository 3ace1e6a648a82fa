namespace FineTune.Engine.Model;

/// <summary>The seven linear projections of a Llama block, the modules LoRA can target.</summary>
public enum Projection
{
    /// <summary><c>self_attn.q_proj</c>.</summary>
    Q,
    /// <summary><c>self_attn.k_proj</c>.</summary>
    K,
    /// <summary><c>self_attn.v_proj</c>.</summary>
    V,
    /// <summary><c>self_attn.o_proj</c>.</summary>
    O,
    /// <summary><c>mlp.gate_proj</c>.</summary>
    Gate,
    /// <summary><c>mlp.up_proj</c>.</summary>
    Up,
    /// <summary><c>mlp.down_proj</c>.</summary>
    Down,
}

/// <summary>Names and shapes of <see cref="Projection"/>s.</summary>
public static class Projections
{
    /// <summary>All projections in block order.</summary>
    public static readonly Projection[] All = Enum.GetValues<Projection>();

    /// <summary>PEFT's module name, e.g. <c>q_proj</c>.</summary>
    public static string ModuleName(this Projection p) => p switch
    {
        Projection.Q => "q_proj",
        Projection.K => "k_proj",
        Projection.V => "v_proj",
        Projection.O => "o_proj",
        Projection.Gate => "gate_proj",
        Projection.Up => "up_proj",
        _ => "down_proj",
    };

    /// <summary>The path inside a layer, e.g. <c>self_attn.q_proj</c>.</summary>
    public static string Path(this Projection p) =>
        (p is Projection.Gate or Projection.Up or Projection.Down ? "mlp." : "self_attn.") + p.ModuleName();

    /// <summary>Parses a PEFT module name.</summary>
    public static Projection Parse(string moduleName) =>
        All.First(p => p.ModuleName() == moduleName);

    /// <summary>Input width of the projection.</summary>
    public static int InFeatures(this Projection p, ModelConfig c) => p switch
    {
        Projection.O => c.QDim,
        Projection.Down => c.IntermediateSize,
        _ => c.HiddenSize,
    };

    /// <summary>Output width of the projection.</summary>
    public static int OutFeatures(this Projection p, ModelConfig c) => p switch
    {
        Projection.Q => c.QDim,
        Projection.K or Projection.V => c.KvDim,
        Projection.Gate or Projection.Up => c.IntermediateSize,
        _ => c.HiddenSize,
    };
}
