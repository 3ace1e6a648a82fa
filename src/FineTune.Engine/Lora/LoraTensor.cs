namespace FineTune.Engine.Lora;

/// <summary>One trainable adapter matrix with its gradient and AdamW moments.</summary>
public sealed class LoraTensor(string name, int rows, int cols)
{
    /// <summary>PEFT key, e.g. <c>base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight</c>.</summary>
    public string Name { get; } = name;
    /// <summary>Rows (output dimension).</summary>
    public int Rows { get; } = rows;
    /// <summary>Columns (input dimension).</summary>
    public int Cols { get; } = cols;
    /// <summary>Values, row-major.</summary>
    public float[] Value { get; } = new float[rows * cols];
    /// <summary>Accumulated gradient.</summary>
    public float[] Grad { get; } = new float[rows * cols];
    /// <summary>AdamW first moment.</summary>
    public float[] M { get; } = new float[rows * cols];
    /// <summary>AdamW second moment.</summary>
    public float[] V { get; } = new float[rows * cols];
}
