using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// Projections that read the same input (q/k/v the first norm's output, gate/up the second's). Their
/// LoRA A matrices are stored back to back (<see cref="CudaLoraState"/>), so the group's
/// down-projections <c>x·[A₁;A₂;…]ᵀ</c>, A gradients <c>[g₁|g₂|…]ᵀ·x</c> and input gradient
/// <c>[g₁|g₂|…]·[A₁;A₂;…]</c> are one product each: one pass over x (or dx) instead of one per
/// projection. Each projection's columns of the group's <c>[n, members · r]</c> hidden and g
/// buffers are a strided view.
/// </summary>
internal static class LoraGroups
{
    private static readonly Projection[] Qkv = [Projection.Q, Projection.K, Projection.V];
    private static readonly Projection[] GateUp = [Projection.Gate, Projection.Up];

    /// <summary>The most members a group has (the workspace's g buffer holds this many r-wide blocks).</summary>
    public const int MaxMembers = 3;

    /// <summary>The group <paramref name="p"/> belongs to, in projection order (itself alone for o and down).</summary>
    public static IReadOnlyList<Projection> Of(Projection p) => p switch
    {
        Projection.Q or Projection.K or Projection.V => Qkv,
        Projection.Gate or Projection.Up => GateUp,
        _ => [p],
    };

    /// <summary>Whether every member of <paramref name="p"/>'s group (of two or more) is a LoRA target.</summary>
    public static bool AllTargeted(Projection p, IReadOnlyList<Projection> targets)
    {
        var group = Of(p);
        return group.Count > 1 && group.All(targets.Contains);
    }
}
