using FineTune.Engine.Backends.Cuda.Interop;
using FineTune.Engine.Backends.Cuda.Memory;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// The residual stream at the layer boundaries (gradient checkpointing's checkpoints) kept in pinned host
/// memory instead of on the GPU, as Unsloth's "unsloth" gradient checkpointing does (gradient_checkpointing:
/// offload, and always under load_in_4bit with checkpointing): there they are the largest thing left that grows with the model (1 GiB at Llama-3.1-8B, 5 GiB at
/// Llama-3.3-70B for 2 x 2048 tokens). The GPU keeps two alternating slots, a write-only slot for a
/// recomputation's output, and the last layer's output. Copies run on a side stream, ordered against the
/// compute stream by events only, so they overlap the layers: in the forward pass checkpoint i goes to the
/// host while layer i runs; in the backward pass checkpoint l - 1 comes back while layer l recomputes and
/// runs backward. The last two checkpoints never leave the GPU (the backward pass starts with them).
/// Layer l reads checkpoint l from slot l % 2 and writes checkpoint l + 1 to the other one.
/// </summary>
internal sealed unsafe class OffloadedResiduals : IDisposable
{
    private readonly CudaDevice _device;
    private readonly CuDriver _cu;
    private readonly CudaStream _side;
    private readonly MappedHostBuffer _host;
    private readonly ulong[] _slots;
    private readonly CudaEvent[] _written, _copied, _released, _fetched;
    private readonly int _layers;
    private readonly long _stride;
    private long _bytes;
    private bool _backward;

    /// <summary>Room for <paramref name="tokens"/> rows of <paramref name="hidden"/> bf16 values per checkpoint, <paramref name="layers"/> layers.</summary>
    public OffloadedResiduals(CudaDevice device, BufferSet buffers, int layers, long tokens, int hidden)
    {
        _device = device;
        _cu = device.Driver;
        _layers = layers;
        _stride = tokens * hidden * 2;
        _slots = [buffers.Bf16(tokens * hidden), buffers.Bf16(tokens * hidden)];
        Recomputed = buffers.Bf16(tokens * hidden);
        Final = buffers.Bf16(tokens * hidden);
        _host = MappedHostBuffer.Allocate(device, HostBytes(layers, tokens, hidden),
            "the residual checkpoints (gradient_checkpointing: offload, and load_in_4bit with checkpointing, keep them in host memory; lower per_device_train_batch_size or max_seq_length to need less)",
            CudaErrors.CheckpointsNotPinned);
        _side = new CudaStream(_cu);
        CudaEvent[] Events() => [new CudaEvent(device), new CudaEvent(device)];
        (_written, _copied, _released, _fetched) = (Events(), Events(), Events(), Events());
    }

    /// <summary>Checkpoints that go to the host: all but the last two before the model's output.</summary>
    private static int Offloaded(int layers) => Math.Max(0, layers - 2);

    /// <summary>Pinned host bytes for a run of <paramref name="tokens"/> tokens.</summary>
    public static long HostBytes(int layers, long tokens, int hidden) => Offloaded(layers) * tokens * hidden * 2;

    /// <summary>GPU bytes: two slots, the recomputation's slot and the last layer's output.</summary>
    public static long DeviceBytes(long tokens, int hidden) => 4 * tokens * hidden * 2;

    /// <summary>Where a recomputed layer writes the output it already has on the host (Gemma's sandwich norms rewrite it).</summary>
    public ulong Recomputed { get; }

    /// <summary>The last layer's output, which the final norm and its backward read.</summary>
    public ulong Final { get; }

    /// <summary>The device address of checkpoint <paramref name="i"/> (0 the embedding output, <c>layers</c> the last layer's).</summary>
    public ulong this[int i] => i == _layers ? Final : _slots[i % 2];

    /// <summary>Sets the rows of this step (bytes copied per checkpoint) and whether a backward pass follows (without one nothing is copied).</summary>
    public void Begin(int rows, int hidden, bool backward) => (_bytes, _backward) = ((long)rows * hidden * 2, backward);

    /// <summary>Before checkpoint <paramref name="i"/> is written: its slot's last copy to the host must have finished.</summary>
    public void BeforeWrite(int i)
    {
        if (i < _layers) Wait(_device.Stream, _copied[i % 2]);
    }

    /// <summary>After checkpoint <paramref name="i"/> is written: queue its copy to the host.</summary>
    public void Written(int i)
    {
        if (!_backward || i >= Offloaded(_layers)) return;
        var s = i % 2;
        _written[s].Record(_device.Stream);
        Wait(_side, _written[s]);
        _cu.Check(_cu.cuMemcpyDtoHAsync((byte*)_host.HostAddress + i * _stride, _slots[s], (nuint)_bytes, _side.Handle), "cuMemcpyDtoHAsync");
        _copied[s].Record(_side);
    }

    /// <summary>
    /// Before layer <paramref name="l"/>'s recomputation and backward pass: wait for checkpoint l if it was
    /// fetched, then fetch checkpoint l - 1 into the slot checkpoint l + 1 held (its layer is done).
    /// </summary>
    public void BeforeBackward(int l)
    {
        if (l < Offloaded(_layers)) Wait(_device.Stream, _fetched[l % 2]);
        var previous = l - 1;
        if (previous < 0 || previous >= Offloaded(_layers)) return;
        var s = previous % 2;
        _released[s].Record(_device.Stream);
        Wait(_side, _released[s]);
        _cu.Check(_cu.cuMemcpyHtoDAsync(_slots[s], (byte*)_host.HostAddress + previous * _stride, (nuint)_bytes, _side.Handle), "cuMemcpyHtoDAsync");
        _fetched[s].Record(_side);
    }

    private void Wait(CudaStream stream, CudaEvent e) => _cu.Check(_cu.cuStreamWaitEvent(stream.Handle, e.Handle, 0), "cuStreamWaitEvent");

    /// <inheritdoc />
    public void Dispose()
    {
        _side.Synchronize();
        foreach (var e in _written.Concat(_copied).Concat(_released).Concat(_fetched)) e.Dispose();
        _side.Dispose();
        _host.Dispose();
    }
}
