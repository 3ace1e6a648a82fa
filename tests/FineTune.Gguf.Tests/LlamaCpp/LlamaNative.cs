using System.Reflection;
using System.Runtime.InteropServices;

namespace FineTune.Gguf.Tests.LlamaCpp;

/// <summary>
/// llama.cpp's C API from the prebuilt libraries of the npm package @node-llama-cpp/linux-x64 — the
/// oracle for our GGUF files. Struct layouts are those of the packaged build (checked against its
/// default-params functions in <see cref="EnsureLoaded"/>); structs are handled as raw bytes
/// returned by llama.cpp's own default functions, and only fields at verified offsets are changed.
/// </summary>
internal static unsafe class LlamaNative
{
    private const string Llama = "llama";
    private const string Ggml = "ggml";
    private static readonly object Gate = new();
    private static string? _dir;

    /// <summary>The folder with libllama and the ggml libraries; fails the test when node_modules is missing.</summary>
    public static string LibraryDirectory
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new InvalidOperationException(
                "llama.cpp libraries not found (node_modules/@node-llama-cpp/linux-x64): run npm ci in the repository root.");
        }
    }

    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_dir is not null) return;
            var dir = LibraryDirectory;
            NativeLibrary.SetDllImportResolver(typeof(LlamaNative).Assembly, (name, _, _) => name switch
            {
                Llama => NativeLibrary.Load(Directory.GetFiles(dir, "libllama.v*.so").Single()),
                Ggml => NativeLibrary.Load(Directory.GetFiles(dir, "libggml.v*.so").Single()),
                _ => IntPtr.Zero,
            });
            _dir = dir;
            llama_log_set(&SilentLog, null);
            ggml_log_set(&SilentLog, null);
            llama_backend_init();
            ggml_backend_load_all_from_path(dir);
            CheckLayouts();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static void SilentLog(int level, byte* text, void* user) { }

    /// <summary>Raw llama_model_quantize_params (64 bytes in this build).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 64)]
    public struct QuantizeParams
    {
        public int NThread;       // offset 0
        public int FType;         // offset 4
        public int OutputTensorType;    // 8
        public int TokenEmbeddingType;  // 12
        public byte AllowRequantize;    // 16
        public byte QuantizeOutputTensor; // 17
        public byte OnlyCopy;     // 18
        public byte Pure;         // 19
    }

    /// <summary>Raw llama_model_params (80 bytes in this build); passed back unchanged.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 80)]
    public struct ModelParams { private long _first; }

    /// <summary>Raw llama_context_params (160 bytes in this build).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 160)]
    public struct ContextParams
    {
        [FieldOffset(0)] public uint NCtx;
        [FieldOffset(4)] public uint NBatch;
        [FieldOffset(8)] public uint NUbatch;
        [FieldOffset(12)] public uint NSeqMax;
        /// <summary>ggml type of the K cache (F16 = 1 by default, F32 = 0).</summary>
        /// <summary>llama_flash_attn_type: -1 auto (default), 0 off, 1 on.</summary>
        [FieldOffset(52)] public int FlashAttnType;
        [FieldOffset(104)] public int TypeK;
        /// <summary>ggml type of the V cache.</summary>
        [FieldOffset(108)] public int TypeV;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Batch
    {
        public int NTokens;
        public int* Token;
        public float* Embd;
        public int* Pos;
        public int* NSeqId;
        public int** SeqId;
        public sbyte* Logits;
    }

    private static void CheckLayouts()
    {
        var q = llama_model_quantize_default_params();
        if (q.OutputTensorType != q.TokenEmbeddingType || q.QuantizeOutputTensor != 1 || q.OnlyCopy != 0)
            throw new InvalidOperationException("llama_model_quantize_params layout differs from the one these tests were written for.");
        var c = llama_context_default_params();
        if (c.NCtx != 512 || c.NBatch != 2048 || c.NUbatch != 512 || c.NSeqMax != 1 || c.FlashAttnType != -1 || c.TypeK != 1 || c.TypeV != 1)
            throw new InvalidOperationException("llama_context_params layout differs from the one these tests were written for.");
    }

    [DllImport(Llama)] public static extern void llama_backend_init();
    [DllImport(Llama)] public static extern void llama_log_set(delegate* unmanaged[Cdecl]<int, byte*, void*, void> cb, void* user);
    [DllImport(Ggml, EntryPoint = "ggml_backend_load_all_from_path")] private static extern void ggml_backend_load_all_from_path_raw(byte* dir);

    private static void ggml_log_set(delegate* unmanaged[Cdecl]<int, byte*, void*, void> cb, void* user)
    {
        var handle = NativeLibrary.Load(Path.Combine(_dir!, "libggml-base.so"));
        var fn = (delegate* unmanaged[Cdecl]<delegate* unmanaged[Cdecl]<int, byte*, void*, void>, void*, void>)NativeLibrary.GetExport(handle, "ggml_log_set");
        fn(cb, user);
    }

    private static void ggml_backend_load_all_from_path(string dir)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(dir + "\0");
        fixed (byte* p = bytes) ggml_backend_load_all_from_path_raw(p);
    }

    [DllImport(Llama)] public static extern QuantizeParams llama_model_quantize_default_params();
    [DllImport(Llama)] public static extern uint llama_model_quantize([MarshalAs(UnmanagedType.LPUTF8Str)] string input, [MarshalAs(UnmanagedType.LPUTF8Str)] string output, QuantizeParams* p);
    [DllImport(Llama)] public static extern ModelParams llama_model_default_params();
    [DllImport(Llama)] public static extern ContextParams llama_context_default_params();
    [DllImport(Llama)] public static extern IntPtr llama_model_load_from_file([MarshalAs(UnmanagedType.LPUTF8Str)] string path, ModelParams p);
    [DllImport(Llama)] public static extern void llama_model_free(IntPtr model);
    [DllImport(Llama)] public static extern IntPtr llama_init_from_model(IntPtr model, ContextParams p);
    [DllImport(Llama)] public static extern void llama_free(IntPtr ctx);
    [DllImport(Llama)] public static extern IntPtr llama_model_get_vocab(IntPtr model);
    [DllImport(Llama)] public static extern int llama_vocab_n_tokens(IntPtr vocab);
    [DllImport(Llama)] public static extern int llama_tokenize(IntPtr vocab, byte* text, int textLen, int* tokens, int nTokensMax, [MarshalAs(UnmanagedType.U1)] bool addSpecial, [MarshalAs(UnmanagedType.U1)] bool parseSpecial);
    [DllImport(Llama)] public static extern int llama_detokenize(IntPtr vocab, int* tokens, int nTokens, byte* text, int textLenMax, [MarshalAs(UnmanagedType.U1)] bool removeSpecial, [MarshalAs(UnmanagedType.U1)] bool unparseSpecial);
    [DllImport(Llama)] public static extern Batch llama_batch_init(int nTokens, int embd, int nSeqMax);
    [DllImport(Llama)] public static extern void llama_batch_free(Batch batch);
    [DllImport(Llama)] public static extern int llama_decode(IntPtr ctx, Batch batch);
    [DllImport(Llama)] public static extern float* llama_get_logits_ith(IntPtr ctx, int i);
    [DllImport(Llama)] public static extern IntPtr llama_adapter_lora_init(IntPtr model, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);
    [DllImport(Llama)] public static extern void llama_adapter_lora_free(IntPtr adapter);
    [DllImport(Llama)] public static extern int llama_model_meta_val_str(IntPtr model, [MarshalAs(UnmanagedType.LPUTF8Str)] string key, byte* buf, nuint size);
}
