using FineTune.Cli.Distributed;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Tests.Distributed;

/// <summary>How many ranks a run gets, and what each rank process is told.</summary>
public class LaunchPlanTests
{
    [Fact]
    public void Every_visible_gpu_is_used_unless_gpus_says_otherwise()
    {
        Assert.Equal(4, LaunchPlan.Resolve(null, 4, 1, 0, null, LaunchPlan.DefaultPort).WorldSize);
        Assert.Equal(2, LaunchPlan.Resolve(2, 4, 1, 0, null, LaunchPlan.DefaultPort).WorldSize);
        Assert.True(LaunchPlan.Resolve(null, 1, 1, 0, null, LaunchPlan.DefaultPort).SingleProcess);
        Assert.True(LaunchPlan.Resolve(1, 8, 1, 0, null, LaunchPlan.DefaultPort).SingleProcess);
    }

    [Theory]
    [InlineData(0, 4, 1, 0, null, 29500, "FT7030")]
    [InlineData(3, 2, 1, 0, null, 29500, "FT7032")]
    [InlineData(2, 2, 2, 0, null, 29500, "FT7033")]   // several hosts need the master's address
    [InlineData(2, 2, 2, 2, "10.0.0.1", 29500, "FT7033")]
    [InlineData(2, 2, 1, 0, null, 70000, "FT7033")]
    [InlineData(2, 2, 0, 0, null, 29500, "FT7033")]
    public void Impossible_plans_name_the_option(int? gpus, int visible, int nodes, int nodeRank, string? master, int port, string code)
    {
        var e = Assert.Throws<FineTuneException>(() => LaunchPlan.Resolve(gpus, visible, nodes, nodeRank, master, port));
        Assert.Equal(code, e.Code);
    }

    [Fact]
    public void Across_hosts_global_ranks_follow_torchrun_and_nccl_gets_the_masters_address()
    {
        var plan = LaunchPlan.Resolve(4, 4, 3, 2, "trainer-0.internal", 29600);
        Assert.Equal(12, plan.WorldSize);
        Assert.Equal("trainer-0.internal:29600", plan.NcclCommId);
        var rank = plan.Rank(1, null, TimeSpan.FromSeconds(30));
        Assert.Equal((9, 12, 1), (rank.Rank, rank.WorldSize, rank.LocalRank));
        Assert.Equal("[fd00::1]:29500", LaunchPlan.Resolve(1, 1, 2, 0, "fd00::1", 29500).NcclCommId);
        Assert.Null(LaunchPlan.Resolve(2, 2, 1, 0, "ignored-on-one-host", 29500).NcclCommId);
    }

    [Fact]
    public void A_rank_reads_back_what_the_launcher_wrote()
    {
        var id = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        var written = new RankEnvironment(3, 4, 1, id, TimeSpan.FromSeconds(90)).ToVariables();
        var read = RankEnvironment.FromProcess(name => written.GetValueOrDefault(name))!;
        Assert.Equal((3, 4, 1, TimeSpan.FromSeconds(90)), (read.Rank, read.WorldSize, read.LocalRank, read.Timeout));
        Assert.Equal(id, read.UniqueId);
        Assert.Null(RankEnvironment.FromProcess(_ => null));
    }

    [Theory]
    [InlineData("2", "2", "AB")]      // rank not below the world size
    [InlineData("x", "2", "AB")]
    [InlineData("0", "2", "not-hex")]
    [InlineData("0", "2", null)]      // neither an id nor NCCL_COMM_ID
    public void A_malformed_rank_environment_is_FT7034(string rank, string world, string? id)
    {
        var vars = new Dictionary<string, string?> { [RankEnvironment.RankVariable] = rank, [RankEnvironment.WorldSizeVariable] = world, [RankEnvironment.LocalRankVariable] = "0", [RankEnvironment.UniqueIdVariable] = id };
        var e = Assert.Throws<FineTuneException>(() => RankEnvironment.FromProcess(n => vars.GetValueOrDefault(n)));
        Assert.Equal("FT7034", e.Code);
    }
}
