using System.Runtime.InteropServices;

namespace FineTune.Bench.Quantize;

/// <summary>llama.cpp's quantizer from node_modules/@node-llama-cpp/linux-x64 (layout as in the packaged build).</summary>
internal static unsafe class LlamaQuantize
{
    [StructLayout(LayoutKind.Sequential, Size = 64)]
    public struct Params
    {
        public int NThread;
        public int FType;
    }

    private static string? _dir;

    /// <summary>The version in the npm package's package.json.</summary>
    public static string PackageVersion()
    {
        var json = Path.Combine(_dir!, "..", "..", "package.json");
        return File.Exists(json) ? System.Text.Json.JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("version").GetString()! : "unknown";
    }

    public static void Load()
    {
        string? dir = null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null && dir is null; d = d.Parent)
        {
            var c = Path.Combine(d.FullName, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64");
            if (Directory.Exists(c)) dir = c;
        }
        if (dir is null) throw new InvalidOperationException("node_modules/@node-llama-cpp/linux-x64 not found: run npm ci.");
        _dir = dir;
        NativeLibrary.SetDllImportResolver(typeof(LlamaQuantize).Assembly, (name, _, _) =>
            name == "llama" ? NativeLibrary.Load(Directory.GetFiles(dir, "libllama.v*.so").Single()) : IntPtr.Zero);
        llama_log_set(&Silent, null);
        llama_backend_init();
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static void Silent(int level, byte* text, void* user) { }

    [DllImport("llama")] private static extern void llama_backend_init();
    [DllImport("llama")] private static extern void llama_log_set(delegate* unmanaged[Cdecl]<int, byte*, void*, void> cb, void* user);
    [DllImport("llama")] public static extern Params llama_model_quantize_default_params();
    [DllImport("llama")] public static extern uint llama_model_quantize([MarshalAs(UnmanagedType.LPUTF8Str)] string input, [MarshalAs(UnmanagedType.LPUTF8Str)] string output, Params* p);
}
