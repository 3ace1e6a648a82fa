using FineTune.Engine.Backends.Cuda.Distributed;
using FineTune.Engine.Backends.Cuda.Memory;
using FineTune.Engine.Distributed;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// The gradient sum over ranks. Over NCCL each bucket (<see cref="GradientBuckets"/>, last layers
/// first) is gathered as soon as the last micro-batch's backward pass has finished its layers: an
/// event on the compute stream, then <c>ncclAllGather</c> on the group's stream while earlier layers
/// still compute. Once all are in, one kernel per bucket adds the ranks' slices in rank order into
/// the gradient buffer, so every GPU takes the same AdamW step.
/// </summary>
public sealed partial class CudaTrainingModel
{
    /// <summary>
    /// The bucket sizes (bytes: first, then each). DDP's by default; the verification checks set tiny
    /// ones so that a tiny model's adapter spans several buckets and the overlapped launches run.
    /// </summary>
    internal static (long First, long Each) BucketBytes { get; set; } = (GradientBuckets.FirstBucketBytes, GradientBuckets.BucketBytes);

    private IReadOnlyList<GradientBucket>? _buckets;
    private CudaEvent[]? _bucketReady;
    private DeviceBuffer? _gathered;
    private NcclRankGroup? _summing;
    private int _launched;

    /// <inheritdoc />
    public void BeginGradientSum(IRankGroup group)
    {
        if (group is not NcclRankGroup nccl) return;
        Prepare(nccl);
        _summing = nccl;
        _launched = 0;
    }

    /// <inheritdoc />
    public void SumGradients(IRankGroup group)
    {
        if (group is NcclRankGroup nccl)
        {
            if (_summing is null) BeginGradientSum(nccl);
            // Buckets the backward pass did not reach (no micro-batch on this rank) go in one NCCL group.
            if (_launched < _buckets!.Count)
            {
                var ready = _bucketReady![_launched];
                ready.Record(_ctx.Device.Stream);
                nccl.GatherAsync(ready, _buckets.Skip(_launched).Select(Slice).ToList());
                _launched = _buckets.Count;
            }
            nccl.Wait("the gradient sum");
            foreach (var b in _buckets)
                _ctx.Training.SumRankSlices(_lora.Grads.Pointer + (ulong)(b.Start * 4), _gathered!.Pointer + (ulong)(b.Start * 4 * nccl.Size), b.Count, nccl.Size);
            _summing = null;
            return;
        }
        if (group.Size == 1) return;
        // Any other group (an in-process one in tests) sums host copies, in the same rank order.
        var grads = _lora.Grads.Download<float>();
        group.SumInRankOrder(grads);
        _lora.Grads.Upload<float>(grads);
    }

    /// <summary>After layer <paramref name="layer"/>'s backward pass: queue the buckets whose layers are all done.</summary>
    private void GradientsFinal(int layer)
    {
        if (_summing is null) return;
        var slices = new List<(ulong, ulong, long)>();
        var first = _launched;
        while (_launched < _buckets!.Count && _buckets[_launched].FirstLayer >= layer) slices.Add(Slice(_buckets[_launched++]));
        if (slices.Count == 0) return;
        _bucketReady![first].Record(_ctx.Device.Stream);
        _summing.GatherAsync(_bucketReady[first], slices);
    }

    private (ulong Send, ulong Receive, long Count) Slice(GradientBucket b) =>
        (_lora.Grads.Pointer + (ulong)(b.Start * 4), _gathered!.Pointer + (ulong)(b.Start * 4 * _summing!.Size), b.Count);

    private void Prepare(NcclRankGroup group)
    {
        if (_buckets is not null) return;
        _buckets = GradientBuckets.Plan(_adapterLayers, _lora.Offsets, 4, BucketBytes.First, BucketBytes.Each);
        _bucketReady = _buckets.Select(_ => new CudaEvent(_ctx.Device)).ToArray();
        _gathered = _ctx.Device.Memory.Allocate(_lora.Count * 4 * group.Size);
    }

    private void DisposeGradientSum()
    {
        foreach (var e in _bucketReady ?? []) e.Dispose();
        _gathered?.Dispose();
    }
}
