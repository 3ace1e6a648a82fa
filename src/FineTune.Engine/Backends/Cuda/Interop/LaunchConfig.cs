using System.Runtime.InteropServices;

namespace FineTune.Engine.Backends.Cuda.Interop;

/// <summary>cuda.h's <c>CUlaunchConfig</c> (64-bit layout): grid, block, shared bytes, stream, attributes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LaunchConfig
{
    public uint GridX, GridY, GridZ;
    public uint BlockX, BlockY, BlockZ;
    public uint SharedBytes;
    public IntPtr Stream;
    public LaunchAttribute* Attributes;
    public uint AttributeCount;
}

/// <summary>
/// cuda.h's <c>CUlaunchAttribute</c>: a 4-byte id, 4 bytes of padding, then the 64-byte value union,
/// of which the attributes used here read the first 4 bytes.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
internal struct LaunchAttribute
{
    [FieldOffset(0)] public int Id;
    [FieldOffset(8)] public uint Value;
}
