using System.Runtime.InteropServices;
using FineTune.Engine.Backends.Cuda.Compilation;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Weights.FourBit;

namespace FineTune.Engine.Backends.Cuda.Kernels;

/// <summary>
/// A projection held in bitsandbytes' 4-bit layout on the GPU, in one contiguous range: the packed
/// codes, then either the float32 absmax per block of 64 or (double quantization) one 8-bit code per
/// block followed by a float32 absmax per 256 codes. Each part starts 16-byte aligned. The range is
/// its own allocation (<see cref="Owner"/>) or a slice of one shared by a model's projections, which
/// spares the memory pool's per-allocation rounding (2 MiB above 1 MiB: ~0.25 GiB over Llama-3.1-8B's 224).
/// </summary>
public sealed class CudaFourBitTensor : IDisposable
{
    internal CudaFourBitTensor(DeviceBuffer? owner, ulong pointer, FourBitSettings settings, long count)
    {
        Owner = owner;
        Pointer = pointer;
        Settings = settings;
        Count = count;
    }

    /// <summary>The allocation this tensor owns, or null when it is a slice of a shared one.</summary>
    public DeviceBuffer? Owner { get; }
    /// <summary>Device address of the range.</summary>
    public ulong Pointer { get; }
    /// <summary>Bytes of the range.</summary>
    public long Bytes => BytesFor(Settings, Count);
    /// <summary>Type and double quantization.</summary>
    public FourBitSettings Settings { get; }
    /// <summary>Number of values.</summary>
    public long Count { get; }
    /// <summary>The mean subtracted before double quantization (0 without it).</summary>
    public float Offset { get; internal set; }

    /// <summary>Absmax blocks of 64.</summary>
    public long Blocks => Blocks64(Count);
    /// <summary>Second-level blocks of 256 absmax codes.</summary>
    public long Blocks2 => (Blocks + DoubleQuantized.BlockSize - 1) / DoubleQuantized.BlockSize;
    /// <summary>The packed codes, (Count + 1) / 2 bytes.</summary>
    public ulong Packed => Pointer;
    /// <summary>float32 absmax per block (0 with double quantization).</summary>
    public ulong Absmax => Settings.DoubleQuant ? 0 : Packed + (ulong)Align((Count + 1) / 2);
    /// <summary>8-bit absmax codes (0 without double quantization).</summary>
    public ulong AbsmaxCodes => Settings.DoubleQuant ? Packed + (ulong)Align((Count + 1) / 2) : 0;
    /// <summary>float32 absmax per 256 absmax codes (0 without double quantization).</summary>
    public ulong Absmax2 => Settings.DoubleQuant ? AbsmaxCodes + (ulong)Align(Blocks) : 0;

    /// <summary>Bytes of the range for <paramref name="count"/> values, rounded up to 256 so that ranges can follow one another.</summary>
    public static long BytesFor(FourBitSettings settings, long count)
    {
        var blocks = Blocks64(count);
        var bytes = Align((count + 1) / 2) + (settings.DoubleQuant ? Align(blocks) + 4 * ((blocks + DoubleQuantized.BlockSize - 1) / DoubleQuantized.BlockSize) : 4 * blocks);
        return (bytes + 255) & ~255L;
    }

    private static long Blocks64(long count) => (count + FourBitSettings.BlockSize - 1) / FourBitSettings.BlockSize;
    private static long Align(long bytes) => (bytes + 15) & ~15L;

    /// <inheritdoc />
    public void Dispose() => Owner?.Dispose();
}

/// <summary>
/// Launchers for <c>fourbit.cu</c>: quantizing a bf16 tensor on the device (streamed loading, one
/// projection at a time) and dequantizing one projection into a reused bf16 buffer before its product.
/// The code books and midpoints are uploaded from <see cref="FourBitCodeBook"/> and <see cref="DynamicMap"/>,
/// the CPU reference's own tables.
/// </summary>
public sealed class FourBitKernels : IDisposable
{
    private const int Threads = 256;
    private readonly CudaDevice _device;
    private readonly KernelCompiler _compiler;
    private readonly DeviceBuffer _tables;
    private CudaModule? _module, _gemmModule;

    // Layout of _tables: per type (nf4, fp4) 160 bytes: the 15 float midpoints at 0, the 16 codes in
    // ascending order of value at 60, the 16 float code values at 80; then the 256 dynamic-map values
    // and their 255 midpoints.
    private const int PerType = 160, DynamicMapAt = 2 * PerType, DynamicBoundsAt = DynamicMapAt + 256 * 4;

    /// <summary>Uploads the tables; the kernels compile on first use.</summary>
    public FourBitKernels(CudaDevice device, KernelCompiler compiler)
    {
        _device = device;
        _compiler = compiler;
        var bytes = new byte[DynamicBoundsAt + 255 * 4];
        foreach (var type in new[] { FourBitType.Nf4, FourBitType.Fp4 })
        {
            var at = (int)type * PerType;
            var (order, bounds) = FourBitCodeBook.Buckets(type);
            MemoryMarshal.AsBytes(bounds.AsSpan()).CopyTo(bytes.AsSpan(at));
            order.CopyTo(bytes.AsSpan(at + 60));
            MemoryMarshal.AsBytes(FourBitCodeBook.Values(type)).CopyTo(bytes.AsSpan(at + 80));
        }
        var map = DynamicMap.Signed.ToArray();
        MemoryMarshal.AsBytes(map.AsSpan()).CopyTo(bytes.AsSpan(DynamicMapAt));
        // The midpoints exactly as FourBitQuantizer.QuantizeAbsmax computes them.
        var mapBounds = new float[255];
        for (var i = 0; i < mapBounds.Length; i++) mapBounds[i] = (map[i] + map[i + 1]) / 2f;
        MemoryMarshal.AsBytes(mapBounds.AsSpan()).CopyTo(bytes.AsSpan(DynamicBoundsAt));
        _tables = device.Memory.Allocate(bytes.Length);
        _tables.Upload<byte>(bytes);
    }

    private CudaKernel Kernel(string entry) => (_module ??= _compiler.Load("fourbit.cu")).Kernel(entry);

    private int Grid(long work) => (int)Math.Clamp((work + Threads - 1) / Threads, 1, (long)_device.MultiprocessorCount * 32);

    private ulong TypeTables(FourBitType type) => _tables.Pointer + (ulong)((int)type * PerType);

    /// <summary>
    /// Quantizes <paramref name="count"/> bf16 values at <paramref name="source"/> into a new tensor, at
    /// <paramref name="destination"/> (<see cref="CudaFourBitTensor.BytesFor"/> bytes there) or in an
    /// allocation of its own. With double quantization the block absmax values come to the host once
    /// for their mean (summed in float64 in order, as the reference sums it), which waits for the device.
    /// </summary>
    public unsafe CudaFourBitTensor Quantize(ulong source, long count, FourBitSettings settings, ulong destination = 0)
    {
        var owner = destination == 0 ? _device.Memory.Allocate(CudaFourBitTensor.BytesFor(settings, count)) : null;
        var tensor = new CudaFourBitTensor(owner, owner?.Pointer ?? destination, settings, count);
        try
        {
            // The sections start 16-byte aligned: zeros in the gaps, not whatever the pool's memory held, so the
            // same weights always give the same bytes (two quantizations of a tensor compare equal byte for byte).
            var cu = _device.Driver;
            cu.Check(cu.cuMemsetD8Async(tensor.Pointer, 0, (nuint)tensor.Bytes, _device.Stream.Handle), "cuMemsetD8Async");
            var blocks = tensor.Blocks;
            using var scratch = settings.DoubleQuant ? _device.Memory.Allocate(blocks * 4) : null;
            var absmax = scratch?.Pointer ?? tensor.Absmax;
            Kernel("quantize_4bit").Launch((Grid(blocks * 32), 1, 1), Threads, 0,
                source, KernelArg.Int64(count), tensor.Packed, absmax, TypeTables(settings.Type), KernelArg.Int64(blocks));
            if (scratch is null) return tensor;
            if (blocks > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(count), count, "A 4-bit tensor with double quantization holds at most 2^31 blocks of 64.");
            var host = new float[blocks];
            scratch.Download<float>(host);
            tensor.Offset = FourBitQuantizer.Mean(host);
            Kernel("quantize_absmax").Launch(((int)tensor.Blocks2, 1, 1), 256, 0,
                absmax, (int)blocks, tensor.Offset, tensor.AbsmaxCodes, tensor.Absmax2, _tables.Pointer + DynamicBoundsAt);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Queues writing the bf16 values of <paramref name="tensor"/> (Count a multiple of 16) to <paramref name="output"/>.</summary>
    public void Dequantize(CudaFourBitTensor tensor, ulong output)
    {
        if (tensor.Count % 16 != 0) throw new ArgumentException($"The 4-bit dequantization kernel takes multiples of 16 values, not {tensor.Count}.", nameof(tensor));
        Kernel("dequantize_4bit").Launch((Grid(tensor.Count / 16), 1, 1), Threads, 0,
            tensor.Packed, KernelArg.Int64(tensor.Count), tensor.Absmax, tensor.AbsmaxCodes, tensor.Absmax2, tensor.Offset,
            TypeTables(tensor.Settings.Type) + 80, _tables.Pointer + DynamicMapAt, output);
    }

    /// <summary>
    /// Queues y[rows, out] = x[rows, in] · Wᵀ (+ beta · addend) with W = <paramref name="weight"/> ([out, in], 4-bit)
    /// dequantized inside the kernel: each weight rounds to the bf16 <see cref="Dequantize"/> writes, products and
    /// sums are fp32, and nothing the size of W is written. <paramref name="inFeatures"/> must be a multiple of 64.
    /// Measured on the H200 at Llama-3.1-8B's projections it is slower than <see cref="Dequantize"/> into a buffer
    /// and a cuBLASLt product at every row count (0.48-0.76x at 8 and 16 rows, worse above), so training does
    /// not use it; it stays, checked against float64, as the baseline a faster fused kernel must beat
    /// (bench/train-cuda --fourbit-gemm).
    /// </summary>
    public void GemmSkinny(ulong x, int rows, CudaFourBitTensor weight, int outFeatures, int inFeatures, ulong y, ulong addend = 0, float beta = 0)
    {
        if (inFeatures % FourBitSettings.BlockSize != 0 || (long)outFeatures * inFeatures != weight.Count || rows <= 0)
            throw new ArgumentException($"The fused 4-bit product takes [out, in] weights with in a multiple of {FourBitSettings.BlockSize} and at least one row ({rows} x [{outFeatures}, {inFeatures}], {weight.Count} values).");
        (_gemmModule ??= _compiler.Load("fourbit_gemm.cu")).Kernel("fourbit_gemm_skinny").Launch(((outFeatures + 31) / 32, (rows + 7) / 8, 1), Threads, 0,
            x, rows, inFeatures, outFeatures, weight.Packed, weight.Absmax, weight.AbsmaxCodes, weight.Absmax2, weight.Offset,
            TypeTables(weight.Settings.Type) + 80, _tables.Pointer + DynamicMapAt, y, addend, beta);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _module?.Dispose();
        _gemmModule?.Dispose();
        _tables.Dispose();
    }
}
