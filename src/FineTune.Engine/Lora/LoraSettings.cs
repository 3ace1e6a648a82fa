using FineTune.Core.Config;
using FineTune.Engine.Model;

namespace FineTune.Engine.Lora;

/// <summary>The LoRA hyper-parameters that shape the adapter (PEFT's <c>LoraConfig</c> fields).</summary>
public sealed record LoraSettings(int Rank, double Alpha, double Dropout, bool UseRsLora, IReadOnlyList<Projection> Targets)
{
    /// <summary>The factor the adapter's output is multiplied by: alpha/r, or alpha/sqrt(r) with rsLoRA.</summary>
    public float Scale => (float)(UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank);

    /// <summary>From a loaded <c>lora.yaml</c>.</summary>
    public static LoraSettings From(TrainingConfig c) =>
        new(c.R, c.LoraAlpha, c.LoraDropout, c.UseRsLora, c.TargetModules.Select(Projections.Parse).OrderBy(p => p).ToList());
}
