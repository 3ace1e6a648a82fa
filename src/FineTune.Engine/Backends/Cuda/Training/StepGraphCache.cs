namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>What to do with a step of a given shape (<see cref="StepGraphCache{TKey, TGraph}.Decide"/>).</summary>
internal enum StepGraphAction
{
    /// <summary>Queue the step's launches one by one (a shape seen too rarely, or one a capture failed on).</summary>
    Eager,
    /// <summary>Record the step as a graph, keep it under the shape and launch it.</summary>
    Capture,
    /// <summary>Launch the graph kept for the shape.</summary>
    Replay,
}

/// <summary>
/// Which training steps run as a replayed CUDA graph, keyed by everything that fixes a step's
/// launches (the batch's padded shape, loss rows, loss scale, ...). A graph is captured the
/// <see cref="CaptureAfter"/>-th time a shape comes (the first sighting runs eagerly: it compiles
/// kernels and plans products, which a capture cannot do, and a shape seen once, as most
/// variable-length SFT batches are, never pays for a capture). At most <see cref="Capacity"/>
/// graphs are kept, the least recently used given back first. A shape whose capture failed runs
/// eagerly from then on.
/// </summary>
internal sealed class StepGraphCache<TKey, TGraph> : IDisposable
    where TKey : notnull
    where TGraph : class, IDisposable
{
    private readonly Dictionary<TKey, TGraph> _graphs = [];
    private readonly LinkedList<TKey> _recent = new();
    private readonly Dictionary<TKey, int> _sightings = [];
    private readonly HashSet<TKey> _refused = [];

    /// <summary>A cache keeping up to <paramref name="capacity"/> graphs, capturing at a shape's <paramref name="captureAfter"/>-th sighting.</summary>
    public StepGraphCache(int capacity = 4, int captureAfter = 2)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(captureAfter);
        Capacity = capacity;
        CaptureAfter = captureAfter;
    }

    /// <summary>Graphs kept at most.</summary>
    public int Capacity { get; }

    /// <summary>The sighting of a shape at which its graph is captured.</summary>
    public int CaptureAfter { get; }

    /// <summary>Graphs kept now.</summary>
    public int Count => _graphs.Count;

    /// <summary>Counts one sighting of <paramref name="key"/> and says how to run it; with Replay, <paramref name="graph"/> is its graph.</summary>
    public StepGraphAction Decide(TKey key, out TGraph? graph)
    {
        if (_graphs.TryGetValue(key, out graph))
        {
            _recent.Remove(key);
            _recent.AddFirst(key);
            return StepGraphAction.Replay;
        }
        if (_refused.Contains(key)) return StepGraphAction.Eager;
        // Sightings are only counted up to the capture: a bounded number of shapes stays counted.
        var seen = _sightings.GetValueOrDefault(key) + 1;
        if (seen < CaptureAfter)
        {
            if (_sightings.Count >= 4096) _sightings.Clear();
            _sightings[key] = seen;
            return StepGraphAction.Eager;
        }
        _sightings.Remove(key);
        return StepGraphAction.Capture;
    }

    /// <summary>Keeps <paramref name="graph"/> for <paramref name="key"/> (after a Capture), giving back the least recently used graph when full.</summary>
    public void Add(TKey key, TGraph graph)
    {
        if (_graphs.Remove(key, out var old))
        {
            _recent.Remove(key);
            old.Dispose();
        }
        while (_graphs.Count >= Capacity)
        {
            var last = _recent.Last!.Value;
            _recent.RemoveLast();
            _graphs.Remove(last, out var evicted);
            evicted!.Dispose();
        }
        _graphs[key] = graph;
        _recent.AddFirst(key);
    }

    /// <summary>Marks <paramref name="key"/> as not capturable: it runs eagerly from now on.</summary>
    public void Refuse(TKey key) => _refused.Add(key);

    /// <summary>Gives back every graph (sightings and refusals are forgotten too).</summary>
    public void Clear()
    {
        foreach (var g in _graphs.Values) g.Dispose();
        _graphs.Clear();
        _recent.Clear();
        _sightings.Clear();
        _refused.Clear();
    }

    /// <inheritdoc />
    public void Dispose() => Clear();
}
