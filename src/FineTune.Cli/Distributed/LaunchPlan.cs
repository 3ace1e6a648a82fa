using System.Globalization;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Distributed;

/// <summary>
/// How many ranks a training run has and where: <see cref="GpusPerNode"/> processes on this host,
/// one per GPU, times <see cref="Nodes"/> hosts (torchrun's <c>--nproc-per-node</c>, <c>--nnodes</c>,
/// <c>--node-rank</c>, <c>--master-addr</c>, <c>--master-port</c>). Global rank = node rank ·
/// GPUs per node + local rank.
/// </summary>
internal sealed record LaunchPlan(int GpusPerNode, int Nodes, int NodeRank, string? MasterAddress, int MasterPort)
{
    /// <summary>torchrun's default port.</summary>
    public const int DefaultPort = 29500;

    /// <summary>Ranks over all hosts.</summary>
    public int WorldSize => GpusPerNode * Nodes;

    /// <summary>One process on one device: no launcher, no NCCL.</summary>
    public bool SingleProcess => WorldSize == 1;

    /// <summary>
    /// The plan for <paramref name="requested"/> GPUs (null: every visible one) out of <paramref name="visible"/>,
    /// checking the multi-host options. FT7030/FT7032/FT7033 name what is wrong.
    /// </summary>
    public static LaunchPlan Resolve(int? requested, int visible, int nodes, int nodeRank, string? masterAddress, int masterPort)
    {
        if (requested is < 1)
            throw new FineTuneException("FT7030", $"--gpus (FineTuneGpuCount) is {requested}; it must be at least 1.");
        var gpus = requested ?? visible;
        if (gpus > visible)
            throw new FineTuneException("FT7032",
                $"--gpus (FineTuneGpuCount) asks for {gpus} GPUs but {visible} {(visible == 1 ? "is" : "are")} visible" +
                (Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES") is { } cvd ? $" (CUDA_VISIBLE_DEVICES={cvd})." : "."));
        if (nodes < 1)
            throw new FineTuneException("FT7033", $"--nnodes is {nodes}; it must be at least 1.");
        if (nodeRank < 0 || nodeRank >= nodes)
            throw new FineTuneException("FT7033", $"--node-rank {nodeRank} is outside 0..{nodes - 1} (--nnodes {nodes}).");
        if (masterPort is < 1 or > 65535)
            throw new FineTuneException("FT7033", $"--master-port {masterPort} is not a TCP port (1-65535).");
        if (nodes > 1 && string.IsNullOrWhiteSpace(masterAddress))
            throw new FineTuneException("FT7033", $"--nnodes {nodes} needs --master-addr: the address of the host with --node-rank 0, which every host can reach.");
        return new LaunchPlan(gpus, nodes, nodeRank, nodes > 1 ? masterAddress!.Trim() : null, masterPort);
    }

    /// <summary>NCCL_COMM_ID for several hosts (<c>host:port</c>, IPv6 in brackets), or null on one host.</summary>
    public string? NcclCommId => MasterAddress is null
        ? null
        : (MasterAddress.Contains(':') && !MasterAddress.StartsWith('[') ? $"[{MasterAddress}]" : MasterAddress) + ":" + MasterPort.ToString(CultureInfo.InvariantCulture);

    /// <summary>The environment of local rank <paramref name="local"/>.</summary>
    public RankEnvironment Rank(int local, byte[]? uniqueId, TimeSpan timeout) =>
        new(NodeRank * GpusPerNode + local, WorldSize, local, uniqueId, timeout);
}
