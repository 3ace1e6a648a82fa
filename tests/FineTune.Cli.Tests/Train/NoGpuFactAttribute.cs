using FineTune.Engine.Backends.Cuda;

namespace FineTune.Cli.Tests.Train;

/// <summary>
/// A fact about a machine without a usable NVIDIA GPU (CI): skipped, with the reason in the test
/// output, where a GPU is present, since the device choice then goes the other way.
/// </summary>
public sealed class NoGpuFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> SkipReason = new(() =>
        CudaDevice.IsAvailable(out var gpu) ? $"A usable CUDA GPU is present ({gpu}); this checks the machine without one" : null);

    /// <summary>Sets <see cref="FactAttribute.Skip"/> when a GPU is usable.</summary>
    public NoGpuFactAttribute()
    {
        if (SkipReason.Value is { } reason)
            Skip = reason;
    }
}
