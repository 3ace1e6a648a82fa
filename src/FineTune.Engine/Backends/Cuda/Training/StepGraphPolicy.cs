namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// When a training step may run as a CUDA graph at all: a graph fixes every launch argument at
/// capture, so a step whose launches depend on more than its batch shape must run eagerly.
/// </summary>
internal static class StepGraphPolicy
{
    /// <summary>The environment variable that switches graph replay off (<c>0</c>, <c>false</c> or <c>off</c>).</summary>
    public const string EnvironmentVariable = "FINETUNE_CUDA_GRAPHS";

    /// <summary>Whether <paramref name="value"/> (the variable's value, null when unset) switches graphs off.</summary>
    public static bool SwitchedOff(string? value) =>
        value is not null && (value.Trim() == "0" || value.Trim().Equals("false", StringComparison.OrdinalIgnoreCase) || value.Trim().Equals("off", StringComparison.OrdinalIgnoreCase));

    /// <summary>Why a step cannot be a graph (null: it can).</summary>
    /// <param name="switchedOn">Graph replay is on (the model's switch, the environment).</param>
    /// <param name="dropoutMasks">LoRA dropout draws this step's masks: the seed is a launch argument that changes every step.</param>
    /// <param name="offloadedCheckpoints">Checkpoints go to host memory: copies the host paces with events.</param>
    /// <param name="ncclGradientSum">The gradient sum over GPUs is in flight: NCCL calls launched from the host as buckets complete.</param>
    /// <param name="synchronizesAfterLaunch">The device waits after every launch (a debugging mode), which a capture cannot record.</param>
    public static string? Blocker(bool switchedOn, bool dropoutMasks, bool offloadedCheckpoints, bool ncclGradientSum, bool synchronizesAfterLaunch) =>
        !switchedOn ? "switched off"
        : dropoutMasks ? "LoRA dropout draws a new mask each step"
        : offloadedCheckpoints ? "offloaded checkpoints"
        : ncclGradientSum ? "the NCCL gradient sum"
        : synchronizesAfterLaunch ? "the device synchronises after every launch"
        : null;
}
