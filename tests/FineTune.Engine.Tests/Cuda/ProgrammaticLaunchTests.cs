using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using FineTune.Engine.Backends.Cuda;
using FineTune.Engine.Backends.Cuda.Compilation;
using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// Programmatic dependent launch without a GPU: a kernel launched that way may start while the kernel
/// before it still writes, so each one must wait in <c>grid_dependency_sync()</c> before it touches
/// memory; a kernel that forgets would read stale data only sometimes. The GPU side (same bytes with
/// and without) is the training checks' byte-identical reruns.
/// </summary>
public sealed partial class ProgrammaticLaunchTests
{
    [Fact]
    public void Every_kernel_waits_for_the_previous_grid_before_anything_else()
    {
        var kernels = 0;
        foreach (var file in KernelSources.KernelFiles)
        {
            var (count, missing) = KernelsNotWaitingFirst(KernelSources.Get(file));
            Assert.True(missing.Count == 0, $"{file}: kernels that do not call grid_dependency_sync() first: {string.Join(", ", missing)}");
            kernels += count;
        }
        Assert.True(kernels >= 40, $"only {kernels} kernels found: the scan no longer sees them");
    }

    [Fact]
    public void The_scan_finds_a_kernel_that_waits_too_late_plain_or_in_a_macro()
    {
        const string source = """
            extern "C" __global__ void good(float* x)
            {
                grid_dependency_sync();
                x[0] = 1.f;
            }
            extern "C" __global__ void __launch_bounds__(128) late(float* x, int n)
            {
                x[0] = 1.f;
                grid_dependency_sync();
            }
            #define VARIANT(NAME) \
            extern "C" __global__ void NAME(float* x) \
            { \
                extern __shared__ float s[]; \
                x[0] = s[0]; \
            }
            VARIANT(v1)
            """;
        var (count, missing) = KernelsNotWaitingFirst(source);
        Assert.Equal(3, count);
        Assert.Equal(["late", "NAME"], missing);
    }

    [Fact]
    public void Launch_structures_have_cuda_h_layout()
    {
        // CUlaunchConfig: seven unsigned ints, the stream at 32, the attribute array at 40, its count at 48.
        Assert.Equal(56, Marshal.SizeOf<LaunchConfig>());
        Assert.Equal(32, (int)Marshal.OffsetOf<LaunchConfig>(nameof(LaunchConfig.Stream)));
        Assert.Equal(40, (int)Marshal.OffsetOf<LaunchConfig>(nameof(LaunchConfig.Attributes)));
        Assert.Equal(48, (int)Marshal.OffsetOf<LaunchConfig>(nameof(LaunchConfig.AttributeCount)));
        // CUlaunchAttribute: the id, padding to 8, a 64-byte value union.
        Assert.Equal(72, Marshal.SizeOf<LaunchAttribute>());
        Assert.Equal(8, (int)Marshal.OffsetOf<LaunchAttribute>(nameof(LaunchAttribute.Value)));
    }

    [Theory]
    [InlineData(null, false)]
    [InlineData("1", false)]
    [InlineData("0", true)]
    [InlineData(" off ", true)]
    [InlineData("FALSE", true)]
    public void The_switch_reads_like_the_graph_switch(string? value, bool off)
    {
        Assert.Equal(off, EnvironmentSwitch.IsOff(value));
        Assert.Equal("FINETUNE_CUDA_PDL", CudaDevice.ProgrammaticLaunchVariable);
    }

    /// <summary>How many kernels <paramref name="source"/> defines, and those whose body does not start with the wait.</summary>
    private static (int Count, List<string> Missing) KernelsNotWaitingFirst(string source)
    {
        var missing = new List<string>();
        var matches = KernelHeader().Matches(source);
        foreach (Match m in matches)
        {
            var body = source.IndexOf('{', m.Index);
            // A macro's body has line continuations; a shared-memory declaration is not a statement.
            var rest = Regex.Replace(source[(body + 1)..], @"\\\s*\n", "\n").TrimStart();
            rest = Regex.Replace(rest, @"^extern __shared__[^;]*;\s*", "");
            if (!rest.StartsWith("grid_dependency_sync();", StringComparison.Ordinal))
                missing.Add(m.Groups["name"].Value);
        }
        return (matches.Count, missing);
    }

    [GeneratedRegex(@"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(?<name>\w+)\s*\(")]
    private static partial Regex KernelHeader();
}
