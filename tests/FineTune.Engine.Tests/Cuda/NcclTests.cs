using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Distributed;
using FineTune.Engine.Backends.Cuda.Verification;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// Multi-GPU training's pieces that one GPU can check (<see cref="DistributedChecks"/>): the
/// rank-order sum kernel, NCCL collectives on a one-rank communicator, and training through a real
/// one-rank NCCL group giving the single-process adapter's bytes. Skipped, with the reason, without a GPU.
/// </summary>
public sealed class NcclTests
{
    private static readonly Lazy<DistributedChecks> Checks = new(DistributedChecks.Open);

    [CudaFact]
    public void Rank_order_sum_kernel_equals_the_host_sum_bit_for_bit() => AssertPasses("kernel_sum_rank_slices");

    [CudaFact]
    public void Nccl_collectives_work_on_a_one_rank_communicator() => AssertPasses("nccl_collectives_one_rank");

    [CudaFact]
    public void Training_through_a_one_rank_nccl_group_writes_the_single_process_adapter() => AssertPasses("nccl_one_rank_training");

    [NoNcclFact]
    public void Without_libnccl_a_multi_gpu_run_stops_with_FT3150_naming_the_library()
    {
        var e = Assert.Throws<FineTuneException>(NcclRankGroup.CreateUniqueId);
        Assert.Equal("FT3150", e.Code);
        Assert.Contains("none of libnccl.so.2, libnccl.so could be loaded", e.Message);
        Assert.Contains("one GPU trains without it (--gpus 1)", e.Message);
    }

    private static void AssertPasses(string name)
    {
        var result = Checks.Value.Run(name);
        Assert.True(result.Passed, result.ToString());
    }
}

/// <summary>A fact about a machine where libnccl cannot be loaded (CI): skipped where NCCL is installed.</summary>
public sealed class NoNcclFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when NCCL loads.</summary>
    public NoNcclFactAttribute()
    {
        try
        {
            Skip = $"NCCL is installed here ({NcclRankGroup.Describe()}); this checks a machine without it";
        }
        catch (FineTuneException)
        {
        }
    }
}
