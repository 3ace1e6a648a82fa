using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Compilation;
using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Kernels;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>The parts of the CUDA backend that run without a GPU: library discovery, sizing, bf16, frequencies.</summary>
public sealed class CudaHostTests
{
    [Fact]
    public void Missing_library_error_names_the_files_and_where_it_looked()
    {
        var e = Assert.Throws<FineTuneException>(() =>
            NativeLibraryLocator.Load("NVRTC (the CUDA run-time compiler)", ["libnvrtc-missing-for-test.so.13", "libnvrtc-missing-for-test.so.12"],
                CudaErrors.NvrtcNotFound, "Install the CUDA toolkit.", out _));
        Assert.Equal("FT3102", e.Code);
        Assert.Contains("libnvrtc-missing-for-test.so.13, libnvrtc-missing-for-test.so.12", e.Message);
        Assert.Contains("LD_LIBRARY_PATH", e.Message);
        Assert.Contains("Install the CUDA toolkit.", e.Message);
        Assert.Contains(NativeLibraryLocator.OverrideVariable, e.Message);
    }

    [Fact]
    public void Override_folder_is_searched_first()
    {
        // Any loadable shared library stands in for a CUDA one: the runtime's own System.Native.
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var native = Path.Combine(runtimeDir, "libSystem.Native.so");
        Assert.True(File.Exists(native), native);
        var dir = Directory.CreateTempSubdirectory("ft-cuda-locator-");
        try
        {
            File.Copy(native, Path.Combine(dir.FullName, "libfake-cuda-for-test.so.1"));
            Environment.SetEnvironmentVariable(NativeLibraryLocator.OverrideVariable, dir.FullName);
            NativeLibraryLocator.Load("test", ["libfake-cuda-for-test.so.1"], CudaErrors.DriverNotFound, "", out var from);
            Assert.Equal(Path.Combine(dir.FullName, "libfake-cuda-for-test.so.1"), from);
        }
        finally
        {
            Environment.SetEnvironmentVariable(NativeLibraryLocator.OverrideVariable, null);
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Library_names_prefer_the_drivers_cuda_major()
    {
        Assert.Equal(["libnvrtc.so.13", "libnvrtc.so.12"], LibraryNames.Versioned("nvrtc", 13000, "{0}"));
        Assert.Equal(["libnvrtc.so.12", "libnvrtc.so.13"], LibraryNames.Versioned("nvrtc", 12080, "{0}"));
    }

    [Theory]
    [InlineData(0, 512)]
    [InlineData(1, 512)]
    [InlineData(513, 1024)]
    [InlineData(1 << 20, 1 << 20)]
    [InlineData((1 << 20) + 1, 2 << 20)]
    [InlineData((5L << 20) + 3, 6L << 20)]
    public void Pool_rounds_sizes_to_classes(long request, long expected) => Assert.Equal(expected, CudaMemoryPool.RoundSize(request));

    [Fact]
    public void Bf16_rounds_to_nearest_even()
    {
        Assert.Equal(0x3F80, Bf16.FromSingle(1f));
        Assert.Equal(0x3F80, Bf16.FromSingle(1f + MathF.Pow(2, -8)));        // halfway, ties to even (down)
        Assert.Equal(0x3F82, Bf16.FromSingle(1f + 3 * MathF.Pow(2, -8)));    // halfway, ties to even (up)
        Assert.Equal(0x3F81, Bf16.FromSingle(1f + 1.5f * MathF.Pow(2, -8))); // above halfway rounds up
        Assert.Equal(0xC000, Bf16.FromSingle(-2f));
        Assert.True(float.IsNaN(Bf16.ToSingle(Bf16.FromSingle(float.NaN))));
        Assert.Equal(0x7F80, Bf16.FromSingle(float.PositiveInfinity));
    }

    [Fact]
    public void Llama3_frequencies_keep_high_scale_low_and_blend_between()
    {
        const int headDim = 64;
        const float factor = 32, low = 1, high = 4;
        const int context = 8192;
        var plain = RopeFrequencies.Default(headDim, 500000);
        var scaled = RopeFrequencies.Llama3(headDim, 500000, factor, low, high, context);
        Assert.Equal(1f, plain[0]);
        for (var i = 0; i < plain.Length; i++)
        {
            var wavelen = 2 * Math.PI / plain[i];
            if (wavelen < context / high)
                Assert.Equal(plain[i], scaled[i]);
            else if (wavelen > context / low)
                Assert.Equal(plain[i] / factor, scaled[i], 6);
            else
                Assert.InRange(scaled[i], plain[i] / factor, plain[i]);
        }
        Assert.Contains(scaled.Select((f, i) => f / plain[i]), r => r > 1 / factor + 1e-3 && r < 1 - 1e-3);
    }

    [Fact]
    public void Kernel_sources_are_embedded()
    {
        Assert.Equal(["attention.cu", "attention_hopper.cu", "convert.cu", "cross_entropy.cu", "fourbit.cu", "fourbit_gemm.cu", "norm.cu", "optimizer.cu", "rope.cu", "swiglu.cu", "training.cu"], KernelSources.KernelFiles.ToArray());
        Assert.Contains(KernelSources.Headers, h => h.Key == "common.cuh");
        Assert.Contains(KernelSources.Headers, h => h.Key == "attention.cuh");
        Assert.Contains("attention_backward_dkv", KernelSources.Get("attention.cu"));
    }
}

/// <summary>Argument validation of the launchers, which runs before anything touches the GPU.</summary>
public sealed class CudaShapeValidationTests
{
    [Theory]
    [InlineData(1, 16, 6, 4, 64)]   // kv heads must divide query heads
    [InlineData(1, 16, 8, 2, 72)]   // head_dim must be a multiple of 16
    [InlineData(1, 16, 8, 2, 192)]  // above 128 only 256 (two 128-column chunks)
    [InlineData(1, 16, 8, 2, 512)]
    [InlineData(0, 16, 8, 2, 64)]
    public void Unsupported_attention_shapes_are_rejected(int batch, int seq, int heads, int kvHeads, int headDim) =>
        Assert.Throws<ArgumentException>(() => new AttentionShape(batch, seq, heads, kvHeads, headDim).Validate());

    [Fact]
    public void Llama_shapes_are_accepted_and_scaled_by_inverse_sqrt_head_dim()
    {
        new AttentionShape(4, 2048, 32, 8, 64).Validate();
        new AttentionShape(2, 2048, 32, 8, 128).Validate();
        Assert.Equal(0.125f, new AttentionShape(4, 2048, 32, 8, 64).Scale);
    }

    [Fact]
    public void Gemma_3_shapes_are_accepted_with_their_own_scale_and_window()
    {
        // Gemma 3 1B: head_dim 256, 4 query heads over 1 kv head, query_pre_attn_scalar 256, window 512.
        var local = new AttentionShape(2, 1024, 4, 1, 256) { Window = 512, SoftmaxScale = 0.0625f };
        local.Validate();
        Assert.Equal(0.0625f, local.Scale);
        Assert.Equal(512, local.KernelWindow);
        Assert.Equal(2, local.Chunks);
        // A window as long as the sequence masks nothing beyond causality.
        Assert.Equal(300, (local with { SeqLen = 300 }).KernelWindow);
        Assert.Equal(300, (local with { SeqLen = 300, Window = 0 }).KernelWindow);
        Assert.Equal(1, new AttentionShape(1, 16, 8, 2, 128).Chunks);
    }
}
