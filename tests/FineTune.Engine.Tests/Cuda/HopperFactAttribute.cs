using FineTune.Engine.Backends.Cuda;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// A fact about a kernel that exists only on compute capability 9.0 (H100/H200, attention_hopper.cu):
/// skipped, with the reason, where no GPU is usable or GPU 0 is another architecture.
/// </summary>
public sealed class HopperFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> SkipReason = new(() =>
    {
        if (!CudaDevice.IsAvailable(out var reason))
            return $"No usable CUDA GPU here ({reason})";
        using var device = CudaDevice.Open();
        return device.Architecture == "sm_90" ? null : $"Needs compute capability 9.0 (Hopper); GPU 0 is {device.Name}, {device.Architecture}";
    });

    /// <summary>Sets <see cref="FactAttribute.Skip"/> when there is no Hopper GPU.</summary>
    public HopperFactAttribute()
    {
        if (SkipReason.Value is { } reason)
            Skip = reason;
    }
}
