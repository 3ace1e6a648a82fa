using FineTune.Engine.Backends.Cuda.Interop;

namespace FineTune.Engine.Backends.Cuda;

/// <summary>
/// A CUDA graph captured from the device's stream: the work a piece of code queues (kernels,
/// cuBLASLt products, memsets, device copies) recorded once, then replayed by one launch. Replaying
/// skips the host's per-launch cost and the gaps between launches; it runs the same kernels with
/// the same arguments in the same order, so the bytes equal the captured code's run.
/// </summary>
/// <remarks>
/// Capture runs nothing: the recorded work runs at the first <see cref="Launch"/>. Every argument,
/// device address and scalar is fixed at capture, so the captured code must read what changes from
/// device buffers that are filled before each launch. The capture is thread-local: a call that would
/// wait for the device or allocate from the driver on this thread fails the capture instead of
/// running, and <see cref="TryCapture"/> then reports why and returns null (the caller runs the code
/// eagerly).
/// </remarks>
public sealed unsafe class CudaGraph : IDisposable
{
    private readonly CuDriver _cu;
    private readonly CudaStream _stream;
    private IntPtr _graph, _exec;

    private CudaGraph(CuDriver cu, CudaStream stream, IntPtr graph, IntPtr exec, int nodes)
    {
        _cu = cu;
        _stream = stream;
        _graph = graph;
        _exec = exec;
        Nodes = nodes;
    }

    /// <summary>The recorded operations (kernels, products' kernels, memsets, copies).</summary>
    public int Nodes { get; }

    /// <summary>
    /// Records what <paramref name="body"/> queues on <paramref name="device"/>'s stream. Null, with
    /// <paramref name="failure"/> saying why, when the body threw or did something a capture cannot
    /// record (the body's work has then not run); the stream is usable again either way.
    /// </summary>
    public static CudaGraph? TryCapture(CudaDevice device, Action body, out string? failure)
    {
        var cu = device.Driver;
        var stream = device.Stream.Handle;
        cu.Check(cu.cuStreamBeginCapture(stream, CuDriver.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
        Exception? thrown = null;
        try
        {
            body();
        }
        catch (Exception e)
        {
            thrown = e;
        }
        IntPtr graph;
        var ended = cu.cuStreamEndCapture(stream, &graph);
        if (thrown is not null || ended != 0 || graph == IntPtr.Zero)
        {
            if (graph != IntPtr.Zero) cu.cuGraphDestroy(graph);
            failure = thrown is not null ? $"{thrown.GetType().Name}: {thrown.Message}" : $"cuStreamEndCapture: {cu.ErrorName(ended)}";
            return null;
        }
        nuint nodes = 0;
        cu.Check(cu.cuGraphGetNodes(graph, null, &nodes), "cuGraphGetNodes");
        IntPtr exec;
        var status = cu.cuGraphInstantiateWithFlags(&exec, graph, 0);
        if (status != 0)
        {
            cu.cuGraphDestroy(graph);
            failure = $"cuGraphInstantiateWithFlags: {cu.ErrorName(status)}";
            return null;
        }
        failure = null;
        return new CudaGraph(cu, device.Stream, graph, exec, (int)nodes);
    }

    /// <summary>Queues the recorded work on the stream it was captured from.</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(_exec == IntPtr.Zero, this);
        _cu.Check(_cu.cuGraphLaunch(_exec, _stream.Handle), "cuGraphLaunch");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_exec == IntPtr.Zero) return;
        // A replay still queued keeps its own reference to the executable graph: destroying it here is safe.
        _cu.cuGraphExecDestroy(_exec);
        _cu.cuGraphDestroy(_graph);
        _exec = _graph = IntPtr.Zero;
    }
}
