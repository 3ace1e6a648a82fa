using System.Text;
using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Compilation;

/// <summary>A loaded CUBIN and the kernels in it.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private readonly CudaDevice _device;
    private readonly IntPtr _module;
    private readonly Dictionary<string, CudaKernel> _kernels = new(StringComparer.Ordinal);
    private bool _disposed;

    internal CudaModule(CudaDevice device, string name, byte[] cubin)
    {
        _device = device;
        Name = name;
        IntPtr module;
        fixed (byte* image = cubin)
            device.Driver.Check(device.Driver.cuModuleLoadData(&module, image), $"cuModuleLoadData({name})");
        _module = module;
    }

    /// <summary>The source file it was built from.</summary>
    public string Name { get; }

    /// <summary>The kernel <paramref name="entryPoint"/> (an <c>extern "C"</c> name).</summary>
    public CudaKernel Kernel(string entryPoint)
    {
        if (_kernels.TryGetValue(entryPoint, out var kernel))
            return kernel;
        IntPtr function;
        var name = Encoding.ASCII.GetBytes(entryPoint + "\0");
        fixed (byte* n = name)
            _device.Driver.Check(_device.Driver.cuModuleGetFunction(&function, _module, n), $"cuModuleGetFunction({entryPoint})");
        return _kernels[entryPoint] = new CudaKernel(_device, entryPoint, function);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _device.Driver.Check(_device.Driver.cuModuleUnload(_module), "cuModuleUnload");
    }
}

/// <summary>One kernel argument: a device pointer, an int or a float, passed by its 4 or 8 bytes.</summary>
public readonly struct KernelArg
{
    private KernelArg(ulong bits) => Bits = bits;

    /// <summary>The argument's bytes (little-endian; 32-bit values in the low half).</summary>
    public ulong Bits { get; }

    /// <summary>A device pointer.</summary>
    public static implicit operator KernelArg(ulong pointer) => new(pointer);

    /// <summary>A buffer's device address.</summary>
    public static implicit operator KernelArg(DeviceBuffer buffer) => new(buffer.Pointer);

    /// <summary>A 64-bit integer (a <c>long long</c> parameter).</summary>
    public static KernelArg Int64(long value) => new((ulong)value);

    /// <summary>A 32-bit integer.</summary>
    public static implicit operator KernelArg(int value) => new((uint)value);

    /// <summary>A 32-bit float.</summary>
    public static implicit operator KernelArg(float value) => new(BitConverter.SingleToUInt32Bits(value));
}

/// <summary>A kernel entry point that can be launched on the device's stream.</summary>
public sealed unsafe class CudaKernel
{
    private readonly CudaDevice _device;
    private readonly IntPtr _function;
    private int _dynamicSharedLimit = 48 * 1024;

    internal CudaKernel(CudaDevice device, string name, IntPtr function)
    {
        _device = device;
        Name = name;
        _function = function;
    }

    /// <summary>The entry point's name.</summary>
    public string Name { get; }

    /// <summary>
    /// Queues the kernel. The launch's status is checked, and with
    /// <see cref="CudaDevice.SynchronizeAfterLaunch"/> so is its completion.
    /// </summary>
    public void Launch((int X, int Y, int Z) grid, int blockThreads, int sharedBytes, params ReadOnlySpan<KernelArg> args)
    {
        var cu = _device.Driver;
        if (sharedBytes > _dynamicSharedLimit)
        {
            // Above 48 KiB a kernel must opt in to its dynamic shared memory.
            cu.Check(cu.cuFuncSetAttribute(_function, CuDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedBytes), $"cuFuncSetAttribute({Name})");
            _dynamicSharedLimit = sharedBytes;
        }
        var slots = stackalloc ulong[Math.Max(1, args.Length)];
        var pointers = stackalloc void*[Math.Max(1, args.Length)];
        for (var i = 0; i < args.Length; i++)
        {
            slots[i] = args[i].Bits;
            pointers[i] = &slots[i];
        }
        cu.Check(cu.cuLaunchKernel(_function, (uint)grid.X, (uint)grid.Y, (uint)grid.Z, (uint)blockThreads, 1, 1, (uint)sharedBytes,
            _device.Stream.Handle, pointers, null), $"cuLaunchKernel({Name})");
        if (_device.SynchronizeAfterLaunch)
        {
            try
            {
                _device.Stream.Synchronize();
            }
            catch (CudaException e)
            {
                throw new CudaException($"{Name} (kernel)", e.Code, e.ErrorName);
            }
        }
    }
}
