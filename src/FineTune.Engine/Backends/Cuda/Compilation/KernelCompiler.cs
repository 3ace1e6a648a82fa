using System.Security.Cryptography;
using System.Text;
using FineTune.Core.IO;
using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Backends.Cuda.Compilation;

/// <summary>
/// Compiles the embedded CUDA sources with NVRTC for the device's exact architecture
/// (<c>--gpu-architecture=sm_XX</c>, so the driver has nothing left to JIT) and keeps each
/// CUBIN on disk under the SHA-256 of source, headers, options, architecture and NVRTC version.
/// </summary>
public sealed unsafe class KernelCompiler
{
    /// <summary>Overrides the on-disk cache folder.</summary>
    public const string CacheVariable = "FINETUNE_CUDA_CACHE_DIR";

    private readonly CudaDevice _device;
    private readonly Nvrtc _nvrtc;

    /// <summary>Binds NVRTC (FT3102 when missing) for <paramref name="device"/>.</summary>
    public KernelCompiler(CudaDevice device, string? cacheDirectory = null)
    {
        _device = device;
        _nvrtc = new Nvrtc(device.DriverVersion);
        CacheDirectory = cacheDirectory ?? DefaultCacheDirectory();
    }

    /// <summary>Where compiled CUBINs are kept.</summary>
    public string CacheDirectory { get; }

    /// <summary>NVRTC's version as <c>major.minor</c>.</summary>
    public string NvrtcVersion => $"{_nvrtc.Major}.{_nvrtc.Minor}";

    /// <summary>Where NVRTC was loaded from.</summary>
    public string NvrtcLibrary => _nvrtc.LoadedFrom;

    /// <summary>Compilations served from the disk cache since creation.</summary>
    public int CacheHits { get; private set; }

    /// <summary>Compilations NVRTC actually ran since creation.</summary>
    public int Compilations { get; private set; }

    /// <summary>
    /// Returns the module for <paramref name="fileName"/> compiled with the given preprocessor
    /// definitions (<c>NAME=VALUE</c>), from the cache when present.
    /// </summary>
    public CudaModule Load(string fileName, params string[] defines)
    {
        var options = Options(fileName, defines);
        var source = KernelSources.Get(fileName);
        var headers = KernelSources.Headers.ToArray();
        var key = CacheKey(source, headers, options);
        var path = Path.Combine(CacheDirectory, $"{Path.GetFileNameWithoutExtension(fileName)}-{key}.cubin");

        byte[]? cubin = null;
        try
        {
            if (File.Exists(path))
            {
                cubin = File.ReadAllBytes(path);
                CacheHits++;
            }
        }
        catch (IOException)
        {
            cubin = null;
        }

        if (cubin is null)
        {
            cubin = Compile(fileName, source, headers, options, out var log);
            if (cubin is null)
                throw new CudaException("nvrtcCompileProgram", 6, "NVRTC_ERROR_COMPILATION", $"{fileName}:\n{log}");
            Compilations++;
            TryStore(path, cubin);
        }
        return new CudaModule(_device, fileName, cubin);
    }

    /// <summary>
    /// Compiles every embedded kernel file (with the given definitions) without loading it and
    /// returns each file's error log, so one run shows every compile error at once.
    /// </summary>
    public IReadOnlyList<(string File, bool Ok, string Log)> CompileAll(params string[] defines)
    {
        var headers = KernelSources.Headers.ToArray();
        var results = new List<(string, bool, string)>();
        foreach (var file in KernelSources.KernelFiles)
        {
            var cubin = Compile(file, KernelSources.Get(file), headers, Options(file, defines), out var log);
            results.Add((file, cubin is not null, log));
        }
        return results;
    }

    /// <summary>
    /// The target for one file: the device's architecture, except that files named <c>*_hopper.cu</c>
    /// (warpgroup products, wgmma) compile for <c>sm_90a</c> on compute capability 9.0, the only
    /// target that has those instructions; elsewhere their kernels compile to nothing.
    /// </summary>
    public string ArchitectureFor(string fileName) =>
        fileName.EndsWith("_hopper.cu", StringComparison.Ordinal) && _device.Architecture == "sm_90" ? "sm_90a" : _device.Architecture;

    private string[] Options(string fileName, string[] defines) =>
    [
        $"--gpu-architecture={ArchitectureFor(fileName)}",
        "--std=c++17",
        "--device-as-default-execution-space",
        .. defines.Order(StringComparer.Ordinal).Select(d => "-D" + d),
    ];

    private string CacheKey(string source, KeyValuePair<string, string>[] headers, string[] options)
    {
        var text = new StringBuilder();
        text.Append("nvrtc ").Append(NvrtcVersion).Append('\n');
        text.Append("arch ").Append(_device.Architecture).Append('\n');
        foreach (var option in options)
            text.Append(option).Append('\n');
        foreach (var (name, content) in headers)
            text.Append("header ").Append(name).Append('\n').Append(content).Append('\0');
        text.Append(source);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private byte[]? Compile(string fileName, string source, KeyValuePair<string, string>[] headers, string[] options, out string log)
    {
        var pinned = new List<IntPtr>();
        try
        {
            byte* Utf8(string s)
            {
                var bytes = Encoding.UTF8.GetBytes(s + "\0");
                var p = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes.Length);
                bytes.CopyTo(new Span<byte>(p, bytes.Length));
                pinned.Add((IntPtr)p);
                return p;
            }

            var headerSources = stackalloc byte*[Math.Max(1, headers.Length)];
            var headerNames = stackalloc byte*[Math.Max(1, headers.Length)];
            for (var i = 0; i < headers.Length; i++)
            {
                headerSources[i] = Utf8(headers[i].Value);
                headerNames[i] = Utf8(headers[i].Key);
            }

            IntPtr program;
            _nvrtc.Check(_nvrtc.nvrtcCreateProgram(&program, Utf8(source), Utf8(fileName), headers.Length, headerSources, headerNames), "nvrtcCreateProgram");
            try
            {
                var optionPointers = stackalloc byte*[options.Length];
                for (var i = 0; i < options.Length; i++)
                    optionPointers[i] = Utf8(options[i]);
                var status = _nvrtc.nvrtcCompileProgram(program, options.Length, optionPointers);

                nuint logSize;
                _nvrtc.Check(_nvrtc.nvrtcGetProgramLogSize(program, &logSize), "nvrtcGetProgramLogSize");
                var logBytes = new byte[(int)logSize];
                fixed (byte* l = logBytes)
                    _nvrtc.Check(_nvrtc.nvrtcGetProgramLog(program, l), "nvrtcGetProgramLog");
                log = Encoding.UTF8.GetString(logBytes).TrimEnd('\0', '\n', ' ');

                if (status == 6) // NVRTC_ERROR_COMPILATION: the log says why
                    return null;
                _nvrtc.Check(status, "nvrtcCompileProgram");

                nuint size;
                _nvrtc.Check(_nvrtc.nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
                var cubin = new byte[(int)size];
                fixed (byte* c = cubin)
                    _nvrtc.Check(_nvrtc.nvrtcGetCUBIN(program, c), "nvrtcGetCUBIN");
                return cubin;
            }
            finally
            {
                _nvrtc.nvrtcDestroyProgram(&program);
            }
        }
        finally
        {
            foreach (var p in pinned)
                System.Runtime.InteropServices.NativeMemory.Free((void*)p);
        }
    }

    private static void TryStore(string path, byte[] cubin)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            AtomicFile.WriteAllBytes(path, cubin);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only home only costs a recompilation next run.
        }
    }

    private static string DefaultCacheDirectory()
    {
        var explicitDir = Environment.GetEnvironmentVariable(CacheVariable);
        if (!string.IsNullOrEmpty(explicitDir))
            return explicitDir;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "finetune", "cuda-kernels");
    }
}
