using System.Globalization;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Distributed;

/// <summary>
/// What the launcher tells each rank process, through its environment as torchrun does (RANK,
/// WORLD_SIZE, LOCAL_RANK): its global rank, the number of ranks, the GPU it trains on (the
/// <see cref="LocalRank"/>-th visible one) and the NCCL communicator id (hex). Across hosts there is
/// no id: each rank derives it from <c>NCCL_COMM_ID</c> (the master's address), as NCCL documents.
/// </summary>
internal sealed record RankEnvironment(int Rank, int WorldSize, int LocalRank, byte[]? UniqueId, TimeSpan Timeout)
{
    public const string RankVariable = "FINETUNE_RANK";
    public const string WorldSizeVariable = "FINETUNE_WORLD_SIZE";
    public const string LocalRankVariable = "FINETUNE_LOCAL_RANK";
    public const string UniqueIdVariable = "FINETUNE_NCCL_ID";
    /// <summary>Seconds a collective may make no progress before the ranks stop (default 600, as PyTorch's NCCL timeout).</summary>
    public const string TimeoutVariable = "FINETUNE_NCCL_TIMEOUT";
    /// <summary>NCCL's own variable for a bootstrap root at a fixed address (multi-host).</summary>
    public const string NcclCommIdVariable = "NCCL_COMM_ID";

    /// <summary>This process's rank, or null when it was not started as one (the user ran it).</summary>
    public static RankEnvironment? FromProcess(Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        if (read(RankVariable) is not { } rankText) return null;
        var rank = Parse(RankVariable, rankText, 0);
        var world = Parse(WorldSizeVariable, read(WorldSizeVariable), 1);
        var local = Parse(LocalRankVariable, read(LocalRankVariable), 0);
        if (rank >= world) throw new FineTuneException("FT7034", $"{RankVariable}={rank} is not below {WorldSizeVariable}={world}.");
        byte[]? id = null;
        if (read(UniqueIdVariable) is { Length: > 0 } hex)
        {
            try { id = Convert.FromHexString(hex); }
            catch (FormatException) { throw new FineTuneException("FT7034", $"{UniqueIdVariable} is not hexadecimal."); }
        }
        else if (string.IsNullOrEmpty(read(NcclCommIdVariable)))
        {
            throw new FineTuneException("FT7034", $"A rank needs {UniqueIdVariable} (one host) or {NcclCommIdVariable} (several hosts); 'finetune train' sets them when it starts the ranks.");
        }
        return new RankEnvironment(rank, world, local, id, TimeoutFrom(read));
    }

    /// <summary>The collective timeout from <see cref="TimeoutVariable"/>.</summary>
    public static TimeSpan TimeoutFrom(Func<string, string?> read) =>
        read(TimeoutVariable) is { Length: > 0 } text ? TimeSpan.FromSeconds(Parse(TimeoutVariable, text, 1)) : TimeSpan.FromSeconds(600);

    /// <summary>The variables that make a started process this rank.</summary>
    public IReadOnlyDictionary<string, string> ToVariables()
    {
        var v = new Dictionary<string, string>
        {
            [RankVariable] = Rank.ToString(CultureInfo.InvariantCulture),
            [WorldSizeVariable] = WorldSize.ToString(CultureInfo.InvariantCulture),
            [LocalRankVariable] = LocalRank.ToString(CultureInfo.InvariantCulture),
            [TimeoutVariable] = ((long)Timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture),
        };
        if (UniqueId is not null) v[UniqueIdVariable] = Convert.ToHexString(UniqueId);
        return v;
    }

    private static int Parse(string name, string? text, int minimum) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum
            ? value
            : throw new FineTuneException("FT7034", $"{name}='{text}' is not a whole number of at least {minimum}.");
}
