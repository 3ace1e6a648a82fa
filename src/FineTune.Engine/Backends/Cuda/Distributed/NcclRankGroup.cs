using System.Diagnostics;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Distributed;

namespace FineTune.Engine.Backends.Cuda.Distributed;

/// <summary>
/// The ranks of a multi-GPU run over NCCL, one process per GPU: a communicator set up from the
/// launcher's <c>ncclUniqueId</c>, and its own stream so collectives overlap the compute stream.
/// The gradient sum gathers every rank's buckets (<c>ncclAllGather</c>) and adds them in rank order
/// on each GPU, so the order is fixed by this code, not by NCCL's choice of ring or tree, and every
/// rank holds the same bits. Every wait polls the stream and <c>ncclCommGetAsyncError</c> and gives
/// up after <see cref="Timeout"/>: a dead or stuck rank ends in FT3151/FT3152 after
/// <c>ncclCommAbort</c>, never in a hang.
/// </summary>
public sealed unsafe class NcclRankGroup : IRankGroup
{
    private readonly Nccl _nccl;
    private readonly CudaDevice _device;
    private readonly CuDriver _cu;
    private readonly CudaStream _stream;
    private IntPtr _comm;
    private DeviceBuffer? _send, _receive;

    private NcclRankGroup(Nccl nccl, CudaDevice device, IntPtr comm, int rank, int size, TimeSpan timeout)
    {
        _nccl = nccl;
        _device = device;
        _cu = device.Driver;
        _comm = comm;
        Rank = rank;
        Size = size;
        Timeout = timeout;
        _stream = new CudaStream(_cu);
    }

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int Size { get; }

    /// <summary>How long a collective (or joining) may make no progress before the run stops.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The NCCL version and where it was loaded from (FT3150 when it is absent).</summary>
    public static string Describe() => $"NCCL {Nccl.Instance.Version} ({Nccl.Instance.LoadedFrom})";

    /// <summary>
    /// A new communicator id (<c>ncclGetUniqueId</c>). The calling process hosts NCCL's bootstrap
    /// root, so it must live until every rank has joined: the launcher calls this, then starts the ranks.
    /// </summary>
    public static byte[] CreateUniqueId()
    {
        var nccl = Nccl.Instance;
        NcclUniqueId id;
        nccl.Check(nccl.ncclGetUniqueId(&id), "ncclGetUniqueId", IntPtr.Zero);
        return new ReadOnlySpan<byte>(id.Internal, Nccl.UniqueIdBytes).ToArray();
    }

    /// <summary>
    /// Joins the communicator <paramref name="uniqueId"/> as <paramref name="rank"/> of <paramref name="size"/>
    /// on <paramref name="device"/>. Waits at most <paramref name="timeout"/> for the other ranks (FT3152).
    /// </summary>
    public static NcclRankGroup Join(CudaDevice device, ReadOnlySpan<byte> uniqueId, int rank, int size, TimeSpan timeout)
    {
        if (uniqueId.Length != Nccl.UniqueIdBytes) throw new ArgumentException($"An NCCL id has {Nccl.UniqueIdBytes} bytes.", nameof(uniqueId));
        var nccl = Nccl.Instance;
        var idBytes = uniqueId.ToArray();
        IntPtr comm = 0;
        int status = -1;
        // ncclCommInitRank blocks until all ranks arrive; on its own thread, a rank that never comes
        // ends in a timeout here instead of a hang (the thread is a background one: the exit ends it).
        Exception? failure = null;
        var init = new Thread(() =>
        {
            try
            {
                device.MakeCurrent();
                var id = new NcclUniqueId();
                idBytes.CopyTo(new Span<byte>(id.Internal, Nccl.UniqueIdBytes));
                IntPtr c;
                status = nccl.ncclCommInitRank(&c, size, id, rank);
                comm = c;
            }
            catch (Exception e)
            {
                failure = e;
            }
        }) { IsBackground = true, Name = "ncclCommInitRank" };
        init.Start();
        if (!init.Join(timeout))
            throw new FineTuneException(CudaErrors.NcclTimeout,
                $"Rank {rank} waited {timeout.TotalSeconds:0} s for the other {size - 1} rank(s) to join (ncclCommInitRank): one of them did not start or died. " +
                "Set FINETUNE_NCCL_TIMEOUT (seconds) to wait longer.");
        if (failure is not null) throw failure;
        nccl.Check(status, $"ncclCommInitRank (rank {rank} of {size})", comm);
        return new NcclRankGroup(nccl, device, comm, rank, size, timeout);
    }

    /// <inheritdoc />
    public double[] AllGather(ReadOnlySpan<double> values)
    {
        var bytes = values.Length * 8L;
        Scratch(bytes);
        Upload(_send!.Pointer, values);
        _nccl.Check(_nccl.ncclAllGather(_send.Pointer, _receive!.Pointer, (nuint)values.Length, Nccl.Float64, _comm, _stream.Handle), "ncclAllGather", _comm);
        var result = new double[values.Length * Size];
        Download<double>(result, _receive.Pointer);
        return result;
    }

    /// <inheritdoc />
    /// <remarks><c>ncclAllReduce</c> with <c>ncclMax</c>: the order of a maximum never changes its result.</remarks>
    public bool Any(bool mine)
    {
        Scratch(8);
        Upload<double>(_send!.Pointer, [mine ? 1.0 : 0.0]);
        _nccl.Check(_nccl.ncclAllReduce(_send.Pointer, _receive!.Pointer, 1, Nccl.Float64, Nccl.Max, _comm, _stream.Handle), "ncclAllReduce", _comm);
        var result = new double[1];
        Download<double>(result, _receive.Pointer);
        return result[0] != 0;
    }

    /// <inheritdoc />
    public void SumInRankOrder(Span<float> values)
    {
        Scratch(values.Length * 4L);
        Upload<float>(_send!.Pointer, values);
        _nccl.Check(_nccl.ncclAllGather(_send.Pointer, _receive!.Pointer, (nuint)values.Length, Nccl.Float32, _comm, _stream.Handle), "ncclAllGather", _comm);
        var gathered = new float[values.Length * Size];
        Download<float>(gathered, _receive.Pointer);
        RankOrder.Sum(gathered, Size, values);
    }

    /// <summary>
    /// Queues, on this group's stream after <paramref name="ready"/> (recorded on the compute stream), the
    /// gathers of float32 slices: each (send, receive, count) puts every rank's <c>count</c> values at
    /// receive + rank·count. Several are grouped (<c>ncclGroupStart/End</c>) into one launch.
    /// </summary>
    internal void GatherAsync(CudaEvent ready, IReadOnlyList<(ulong Send, ulong Receive, long Count)> slices)
    {
        _cu.Check(_cu.cuStreamWaitEvent(_stream.Handle, ready.Handle, 0), "cuStreamWaitEvent");
        if (slices.Count > 1) _nccl.Check(_nccl.ncclGroupStart(), "ncclGroupStart", _comm);
        foreach (var (send, receive, count) in slices)
            _nccl.Check(_nccl.ncclAllGather(send, receive, (nuint)count, Nccl.Float32, _comm, _stream.Handle), "ncclAllGather", _comm);
        if (slices.Count > 1) _nccl.Check(_nccl.ncclGroupEnd(), "ncclGroupEnd", _comm);
    }

    /// <summary>
    /// Blocks until everything queued on this group's stream has run, checking NCCL's asynchronous
    /// error state meanwhile; aborts the communicator on an error (FT3151) or after <see cref="Timeout"/> without completion (FT3152).
    /// </summary>
    internal void Wait(string what)
    {
        var clock = Stopwatch.StartNew();
        var spins = 0;
        while (true)
        {
            var status = _cu.cuStreamQuery(_stream.Handle);
            if (status == 0) return;
            if (status != CuDriver.CUDA_ERROR_NOT_READY) _cu.Check(status, "cuStreamQuery");
            int error;
            _nccl.Check(_nccl.ncclCommGetAsyncError(_comm, &error), "ncclCommGetAsyncError", _comm);
            if (error is not Nccl.Success and not Nccl.InProgress)
            {
                var message = _nccl.Describe(error, _comm);
                Abort();
                throw new FineTuneException(CudaErrors.NcclFailed,
                    $"Rank {Rank}: NCCL reported an error during {what}: {message}. Another rank probably stopped; its own error says why.");
            }
            if (clock.Elapsed > Timeout)
            {
                Abort();
                throw new FineTuneException(CudaErrors.NcclTimeout,
                    $"Rank {Rank}: {what} made no progress for {Timeout.TotalSeconds:0} s: another rank died or hangs. The communicator was aborted (ncclCommAbort). " +
                    "Set FINETUNE_NCCL_TIMEOUT (seconds) to wait longer.");
            }
            // Spin briefly (a step's small collectives finish in microseconds), then yield the core.
            if (++spins < 2000) Thread.SpinWait(64);
            else Thread.Sleep(1);
        }
    }

    private void Abort()
    {
        if (_comm == 0) return;
        _nccl.ncclCommAbort(_comm);
        _comm = 0;
    }

    private void Scratch(long bytes)
    {
        if (_send is not null && _send.Bytes >= bytes) return;
        _send?.Dispose();
        _receive?.Dispose();
        _send = _device.Memory.Allocate(Math.Max(bytes, 256));
        _receive = _device.Memory.Allocate(Math.Max(bytes, 256) * Size);
    }

    private void Upload<T>(ulong destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        fixed (T* p = source)
            _cu.Check(_cu.cuMemcpyHtoDAsync(destination, p, (nuint)(source.Length * sizeof(T)), _stream.Handle), "cuMemcpyHtoDAsync");
        Wait("a copy to the GPU");
    }

    private void Download<T>(Span<T> destination, ulong source) where T : unmanaged
    {
        fixed (T* p = destination)
        {
            _cu.Check(_cu.cuMemcpyDtoHAsync(p, source, (nuint)(destination.Length * sizeof(T)), _stream.Handle), "cuMemcpyDtoHAsync");
            Wait("a collective");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _send?.Dispose();
        _receive?.Dispose();
        if (_comm != 0)
        {
            // A healthy communicator is destroyed after its work; destroying waits for it, so a peer that died turns this into an abort.
            var status = _cu.cuStreamQuery(_stream.Handle);
            if (status == 0) _nccl.ncclCommDestroy(_comm);
            else _nccl.ncclCommAbort(_comm);
            _comm = 0;
        }
        _stream.Dispose();
    }
}
