using FineTune.Engine.Backends.Cuda.Blas;
using FineTune.Engine.Backends.Cuda.Compilation;
using FineTune.Engine.Backends.Cuda.Kernels;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>One GPU with everything training runs on it: the kernel compiler, cuBLASLt and the kernels.</summary>
public sealed class CudaTrainingContext : IDisposable
{
    private CudaTrainingContext(CudaDevice device)
    {
        Device = device;
        Compiler = new KernelCompiler(device);
        Blas = new CudaBlas(device);
        Kernels = new CudaKernels(device, Compiler, Blas);
        Training = new TrainingKernels(device, Compiler);
    }

    /// <summary>Opens GPU <paramref name="ordinal"/> and binds NVRTC and cuBLASLt (FT31xx naming what is missing).</summary>
    public static CudaTrainingContext Open(int ordinal = 0) => new(CudaDevice.Open(ordinal));

    /// <summary>The GPU.</summary>
    public CudaDevice Device { get; }
    /// <summary>NVRTC with its on-disk cache.</summary>
    public KernelCompiler Compiler { get; }
    /// <summary>cuBLASLt.</summary>
    public CudaBlas Blas { get; }
    /// <summary>The model's kernels.</summary>
    public CudaKernels Kernels { get; }
    internal TrainingKernels Training { get; }
    /// <summary>4-bit quantization and dequantization (QLoRA base weights); tables uploaded on first use.</summary>
    public FourBitKernels FourBit => _fourBit ??= new FourBitKernels(Device, Compiler);
    private FourBitKernels? _fourBit;

    /// <summary>Copies <paramref name="source"/> to device address <paramref name="destination"/> and waits for it.</summary>
    public unsafe void Upload<T>(ulong destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        var cu = Device.Driver;
        fixed (T* p = source)
            cu.Check(cu.cuMemcpyHtoDAsync(destination, p, (nuint)(source.Length * sizeof(T)), Device.Stream.Handle), "cuMemcpyHtoDAsync");
        Device.Synchronize();
    }

    /// <summary>Copies from device address <paramref name="source"/> into <paramref name="destination"/> after the queued work.</summary>
    public unsafe void Download<T>(Span<T> destination, ulong source) where T : unmanaged
    {
        var cu = Device.Driver;
        fixed (T* p = destination)
            cu.Check(cu.cuMemcpyDtoHAsync(p, source, (nuint)(destination.Length * sizeof(T)), Device.Stream.Handle), "cuMemcpyDtoHAsync");
        Device.Synchronize();
    }

    /// <summary>Queues zeroing <paramref name="bytes"/> bytes at device address <paramref name="destination"/>.</summary>
    public unsafe void Zero(ulong destination, long bytes)
    {
        var cu = Device.Driver;
        cu.Check(cu.cuMemsetD8Async(destination, 0, (nuint)bytes, Device.Stream.Handle), "cuMemsetD8Async");
    }

    /// <summary>Queues a device-to-device copy of <paramref name="bytes"/> bytes.</summary>
    public unsafe void Copy(ulong destination, ulong source, long bytes)
    {
        var cu = Device.Driver;
        cu.Check(cu.cuMemcpyDtoDAsync(destination, source, (nuint)bytes, Device.Stream.Handle), "cuMemcpyDtoDAsync");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Training.Dispose();
        _fourBit?.Dispose();
        Kernels.Dispose();
        Blas.Dispose();
        Device.Dispose();
    }
}
