using FineTune.Engine.Backends.Cuda;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// A fact that needs an NVIDIA GPU: skipped, with the reason in the test output, where libcuda
/// cannot be loaded or cuInit fails (CI has no GPU). Run these on a GPU machine.
/// </summary>
public sealed class CudaFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> SkipReason = new(() =>
        CudaDevice.IsAvailable(out var reason) ? null : $"No usable CUDA GPU here ({reason})");

    /// <summary>Sets <see cref="FactAttribute.Skip"/> when no GPU is usable.</summary>
    public CudaFactAttribute()
    {
        if (SkipReason.Value is { } reason)
            Skip = reason;
    }
}
