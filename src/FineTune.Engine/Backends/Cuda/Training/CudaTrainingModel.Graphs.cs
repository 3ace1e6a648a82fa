namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>
/// CUDA-graph replay of the training step. A step's forward pass, loss head and backward pass are
/// about 1,100 launches at Llama-3.2-1B (kernels and cuBLASLt products, many of them short), each
/// with the host's cost of a launch; recorded once per batch shape (<see cref="StepShape"/>) and
/// replayed as one graph launch, that cost goes (5% of a step at SmolLM2-135M, under 1% at 1B and 8B,
/// where the kernels bound the step: bench/train-cuda/README.md). The batch's inputs are
/// uploaded into the same device buffers before each launch, so a replay reads the new batch.
/// Bytes are those of the eager launches (the same kernels, arguments and order).
/// </summary>
/// <remarks>
/// Steps run eagerly when their launches depend on more than the shape: LoRA dropout (each step's
/// mask seed is a launch argument), offloaded checkpoints (copies to host memory paced by the host),
/// the NCCL gradient sum (launched from the host as buckets complete), a device set to synchronise
/// after every launch, and <c>FINETUNE_CUDA_GRAPHS=0</c> (<see cref="StepGraphPolicy"/>). Variable-length SFT batches are captured only when
/// a shape comes back (<see cref="StepGraphCache{TKey, TGraph}"/>), so they mostly run eagerly.
/// After the optimizer step, the refresh of the bf16 adapter copies (the values' copy, stacked A
/// rows, B in spare columns: two launches per fused projection and layer) is one graph too.
/// </remarks>
public sealed partial class CudaTrainingModel
{
    private static readonly bool GraphsSwitchedOff = StepGraphPolicy.SwitchedOff(Environment.GetEnvironmentVariable(StepGraphPolicy.EnvironmentVariable));

    private readonly StepGraphCache<StepShape, CudaGraph> _stepGraphs = new();
    private readonly StepGraphCache<int, CudaGraph> _refreshGraph = new(capacity: 1);

    /// <summary>Whether steps whose shape repeats replay a captured CUDA graph (default on; the benchmark's A/B turns it off).</summary>
    public bool StepGraphs
    {
        get => _stepGraphsOn;
        set
        {
            _stepGraphsOn = value;
            if (!value) ClearGraphs();
        }
    }
    private bool _stepGraphsOn = !GraphsSwitchedOff;

    /// <summary>Steps that ran as a graph (captures included), step graphs captured, and the nodes of the last one captured.</summary>
    public (long Replayed, int Captured, int Nodes) GraphStats => (_replayed, _captured, _lastNodes);
    private long _replayed;
    private int _captured, _lastNodes;

    /// <summary>Why the last capture failed (null when none did): that shape runs eagerly.</summary>
    public string? GraphFailure { get; private set; }

    /// <summary>Why a step cannot be a graph now (null: it can).</summary>
    private string? GraphBlocker => StepGraphPolicy.Blocker(_stepGraphsOn, dropoutMasks: DropoutKey is not null && _lora.Settings.Dropout > 0,
        offloadedCheckpoints: _offload is not null, ncclGradientSum: _summing is not null, synchronizesAfterLaunch: _ctx.Device.SynchronizeAfterLaunch);

    /// <summary>Runs <paramref name="launches"/> (device work only, over the staged batch) eagerly, or as a captured or replayed graph of <paramref name="shape"/>.</summary>
    private void RunStep(StepShape shape, Action launches)
    {
        if (GraphBlocker is not null)
        {
            launches();
            return;
        }
        var key = shape with { Switches = (FuseLoraProducts ? 1 : 0) | (SingleAttentionLaunch ? 2 : 0) | (_adapterEnabled ? 4 : 0) };
        var ran = RunAsGraph(_stepGraphs, key, launches, out var graph);
        if (ran == StepGraphAction.Eager) return;
        _replayed++;
        if (ran == StepGraphAction.Capture)
        {
            _captured++;
            _lastNodes = graph!.Nodes;
        }
    }

    /// <summary>The bf16 copies of the adapter the products read: the values' copy, then the copies inside weight buffers.</summary>
    private void RefreshCopies()
    {
        void Launches()
        {
            _lora.RefreshBf16();
            RefreshAdapterCopies();
        }
        // Nothing here depends on the step: only the switch and a synchronising device keep it eager.
        if (!_stepGraphsOn || _ctx.Device.SynchronizeAfterLaunch) Launches();
        else RunAsGraph(_refreshGraph, 0, Launches, out _);
    }

    /// <summary>How <paramref name="launches"/> ran: eagerly, captured and launched, or replayed (<paramref name="graph"/>: the graph).</summary>
    private StepGraphAction RunAsGraph<TKey>(StepGraphCache<TKey, CudaGraph> cache, TKey key, Action launches, out CudaGraph? graph) where TKey : notnull
    {
        switch (cache.Decide(key, out graph))
        {
            case StepGraphAction.Replay:
                graph!.Launch();
                return StepGraphAction.Replay;
            case StepGraphAction.Capture:
                var pool = _ctx.Device.Memory;
                var allocations = pool.DriverAllocations + pool.CacheHits;
                var captured = CudaGraph.TryCapture(_ctx.Device, launches, out var failure);
                // A buffer taken from the pool while capturing would be handed back and reused while the graph still writes it.
                if (captured is not null && pool.DriverAllocations + pool.CacheHits != allocations)
                {
                    captured.Dispose();
                    (captured, failure) = (null, "the step allocated device memory");
                }
                if (captured is null)
                {
                    // Nothing captured has run: the step runs eagerly, as every later step of the shape.
                    GraphFailure = failure;
                    cache.Refuse(key);
                    launches();
                    return StepGraphAction.Eager;
                }
                cache.Add(key, captured);
                captured.Launch();
                graph = captured;
                return StepGraphAction.Capture;
            default:
                launches();
                return StepGraphAction.Eager;
        }
    }

    private void ClearGraphs()
    {
        _stepGraphs.Clear();
        _refreshGraph.Clear();
    }

    private void DisposeGraphs()
    {
        _stepGraphs.Dispose();
        _refreshGraph.Dispose();
    }
}
