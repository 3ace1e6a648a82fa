namespace FineTune.Engine.Backends.Cuda;

/// <summary>How the backend's FINETUNE_CUDA_* switches read: <c>0</c>, <c>false</c> or <c>off</c> switch a feature off.</summary>
internal static class EnvironmentSwitch
{
    /// <summary>Whether <paramref name="value"/> (the variable's value, null when unset) switches the feature off.</summary>
    public static bool IsOff(string? value) =>
        value is not null && (value.Trim() == "0" || value.Trim().Equals("false", StringComparison.OrdinalIgnoreCase) || value.Trim().Equals("off", StringComparison.OrdinalIgnoreCase));
}
