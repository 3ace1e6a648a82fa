using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Backends.Cuda;

/// <summary>
/// The FT31xx codes of the CUDA backend (listed in docs/errors.md). User-environment problems
/// (a missing driver or library, too little GPU memory) are <see cref="FineTuneException"/>s with these
/// codes; a failing CUDA call that the user cannot fix is a <see cref="CudaException"/>.
/// </summary>
public static class CudaErrors
{
    /// <summary>libcuda (the NVIDIA driver's CUDA library) could not be loaded.</summary>
    public const string DriverNotFound = "FT3101";

    /// <summary>NVRTC (libnvrtc), the run-time CUDA compiler, could not be loaded.</summary>
    public const string NvrtcNotFound = "FT3102";

    /// <summary>cuBLASLt (libcublasLt) could not be loaded.</summary>
    public const string CublasLtNotFound = "FT3103";

    /// <summary>The driver loaded but reports no usable CUDA device.</summary>
    public const string NoDevice = "FT3104";

    /// <summary>The GPU is older than compute capability 8.0 (bf16 tensor cores).</summary>
    public const string DeviceTooOld = "FT3105";

    /// <summary>A GPU allocation failed even after the pool released its cached blocks.</summary>
    public const string OutOfMemory = "FT3106";

    /// <summary>The run's memory plan (weights, adapter, activations, workspace) exceeds the GPU's free memory.</summary>
    public const string PlanDoesNotFit = "FT3107";

    /// <summary>The model's shapes are outside what the CUDA kernels take (dimensions multiple of 8, head_dim multiple of 16 up to 128).</summary>
    public const string UnsupportedShape = "FT3108";

    /// <summary>load_in_4bit keeps an untied input embedding in pinned host memory, and the host could not pin it.</summary>
    public const string HostEmbeddingNotPinned = "FT3140";

    /// <summary>load_in_4bit with gradient checkpointing keeps the residual checkpoints in pinned host memory, and the host could not pin them.</summary>
    public const string CheckpointsNotPinned = "FT3141";

    /// <summary>NCCL (libnccl), needed to train on several GPUs, could not be loaded.</summary>
    public const string NcclNotFound = "FT3150";

    /// <summary>An NCCL call failed (setting up the ranks, a collective), or NCCL reported an asynchronous error.</summary>
    public const string NcclFailed = "FT3151";

    /// <summary>A collective made no progress within the timeout: another rank died or hangs. The communicator was aborted.</summary>
    public const string NcclTimeout = "FT3152";
}

/// <summary>A CUDA, NVRTC or cuBLASLt call failed: the call and the library's own error name.</summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception for <paramref name="call"/> that returned <paramref name="errorName"/>.</summary>
    public CudaException(string call, int code, string errorName, string? detail = null)
        : base($"{call} failed: {errorName} ({code}){(detail is null ? "" : ": " + detail)}")
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    /// <summary>The API function that failed.</summary>
    public string Call { get; }

    /// <summary>The numeric status it returned.</summary>
    public int Code { get; }

    /// <summary>The library's name for the status (e.g. <c>CUDA_ERROR_ILLEGAL_ADDRESS</c>).</summary>
    public string ErrorName { get; }
}
