using System.Runtime.InteropServices;

namespace FineTune.Engine.Backends.Cuda.Interop;

/// <summary>NVRTC, the run-time CUDA C++ compiler, bound at run time.</summary>
internal sealed unsafe class Nvrtc
{
    public readonly string LoadedFrom;
    public readonly int Major;
    public readonly int Minor;

    public readonly delegate* unmanaged<int, byte*> nvrtcGetErrorString;
    public readonly delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public readonly delegate* unmanaged<IntPtr*, int> nvrtcDestroyProgram;
    public readonly delegate* unmanaged<IntPtr, int, byte**, int> nvrtcCompileProgram;
    public readonly delegate* unmanaged<IntPtr, nuint*, int> nvrtcGetProgramLogSize;
    public readonly delegate* unmanaged<IntPtr, byte*, int> nvrtcGetProgramLog;
    public readonly delegate* unmanaged<IntPtr, nuint*, int> nvrtcGetCUBINSize;
    public readonly delegate* unmanaged<IntPtr, byte*, int> nvrtcGetCUBIN;

    /// <summary>
    /// Loads NVRTC, preferring the major version that matches the driver: a CUBIN built by a
    /// newer NVRTC than the driver supports does not load.
    /// </summary>
    public Nvrtc(int driverVersion)
    {
        var names = LibraryNames.Versioned("nvrtc", driverVersion, windowsPattern: "nvrtc64_{0}0_0.dll");
        var handle = NativeLibraryLocator.Load(
            "NVRTC (the CUDA run-time compiler)", names, CudaErrors.NvrtcNotFound,
            "Install the CUDA toolkit, or `pip install nvidia-cuda-nvrtc` (CUDA 13) / `nvidia-cuda-nvrtc-cu12`.",
            out LoadedFrom);

        nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)Get(handle, "nvrtcGetErrorString");
        nvrtcCreateProgram = (delegate* unmanaged<IntPtr*, byte*, byte*, int, byte**, byte**, int>)Get(handle, "nvrtcCreateProgram");
        nvrtcDestroyProgram = (delegate* unmanaged<IntPtr*, int>)Get(handle, "nvrtcDestroyProgram");
        nvrtcCompileProgram = (delegate* unmanaged<IntPtr, int, byte**, int>)Get(handle, "nvrtcCompileProgram");
        nvrtcGetProgramLogSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get(handle, "nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<IntPtr, byte*, int>)Get(handle, "nvrtcGetProgramLog");
        nvrtcGetCUBINSize = (delegate* unmanaged<IntPtr, nuint*, int>)Get(handle, "nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<IntPtr, byte*, int>)Get(handle, "nvrtcGetCUBIN");

        var version = (delegate* unmanaged<int*, int*, int>)Get(handle, "nvrtcVersion");
        int major, minor;
        Check(version(&major, &minor), "nvrtcVersion");
        Major = major;
        Minor = minor;
    }

    private static IntPtr Get(IntPtr handle, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address) ? address : throw new CudaException(name, -1, "SYMBOL_NOT_FOUND");

    public void Check(int status, string call)
    {
        if (status != 0)
            throw new CudaException(call, status, Marshal.PtrToStringAnsi((IntPtr)nvrtcGetErrorString(status)) ?? $"nvrtcResult {status}");
    }
}

/// <summary>File names of the versioned CUDA libraries, best match for the driver first.</summary>
internal static class LibraryNames
{
    /// <summary>CUDA majors the backend supports, newest first.</summary>
    private static readonly int[] Majors = [13, 12];

    public static string[] Versioned(string stem, int driverVersion, string windowsPattern)
    {
        var driverMajor = driverVersion / 1000;
        // A library of a newer major than the driver needs a newer driver; try those last so the
        // error, if any, names them too.
        var ordered = Majors.Where(m => m <= driverMajor).Concat(Majors.Where(m => m > driverMajor)).ToArray();
        return OperatingSystem.IsWindows()
            ? ordered.Select(m => string.Format(System.Globalization.CultureInfo.InvariantCulture, windowsPattern, m)).ToArray()
            : ordered.Select(m => $"lib{stem}.so.{m}").ToArray();
    }
}
