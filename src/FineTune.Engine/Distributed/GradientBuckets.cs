namespace FineTune.Engine.Distributed;

/// <summary>
/// One slice of the flat LoRA gradient buffer that is summed over the ranks as a unit: whole
/// layers <see cref="FirstLayer"/>..<see cref="LastLayer"/>, i.e. adapter tensors
/// [<see cref="FirstTensor"/>, <see cref="EndTensor"/>) and buffer elements [<see cref="Start"/>, <see cref="End"/>).
/// </summary>
public sealed record GradientBucket(int FirstLayer, int LastLayer, int FirstTensor, int EndTensor, long Start, long End)
{
    /// <summary>Elements in the slice, padding included.</summary>
    public long Count => End - Start;
}

/// <summary>
/// Groups the adapter's gradients into buckets the way PyTorch DDP does (a small first bucket, then
/// about 25 MiB each), in the order the backward pass finishes them: the last layer's first, so a
/// bucket's sum can run on the network while earlier layers are still in their backward pass.
/// Buckets hold whole layers; the adapter's tensors are layer-major, so a bucket is one contiguous
/// slice. The layout depends only on the adapter's shapes, so every rank builds the same one, and
/// each element's sum runs over the ranks in rank order whatever the layout: the buckets change
/// when bytes move, never the result.
/// </summary>
public static class GradientBuckets
{
    /// <summary>DDP's first bucket (1 MiB): the first sum starts as early as possible.</summary>
    public const long FirstBucketBytes = 1L << 20;

    /// <summary>DDP's bucket size (25 MiB): large enough to reach the link's bandwidth.</summary>
    public const long BucketBytes = 25L << 20;

    /// <summary>
    /// Buckets for tensors of layers <paramref name="tensorLayers"/> (non-decreasing) laid out at element
    /// <paramref name="offsets"/> (one more than tensors: the last is the buffer's length), with
    /// <paramref name="elementBytes"/> bytes per element; in the order to launch them (last layers first).
    /// </summary>
    public static IReadOnlyList<GradientBucket> Plan(IReadOnlyList<int> tensorLayers, IReadOnlyList<long> offsets, int elementBytes = 4,
        long firstBucketBytes = FirstBucketBytes, long bucketBytes = BucketBytes)
    {
        if (offsets.Count != tensorLayers.Count + 1) throw new ArgumentException("offsets needs one more entry than tensors.", nameof(offsets));
        for (var i = 1; i < tensorLayers.Count; i++)
            if (tensorLayers[i] < tensorLayers[i - 1]) throw new ArgumentException("tensors must be ordered by layer.", nameof(tensorLayers));
        var buckets = new List<GradientBucket>();
        var end = tensorLayers.Count;
        while (end > 0)
        {
            var target = buckets.Count == 0 ? firstBucketBytes : bucketBytes;
            var lastLayer = tensorLayers[end - 1];
            var first = end;
            // Take whole layers, from the top down, until the bucket reaches its size.
            while (first > 0 && (first == end || (offsets[end] - offsets[first]) * elementBytes < target))
            {
                var layer = tensorLayers[first - 1];
                while (first > 0 && tensorLayers[first - 1] == layer) first--;
            }
            buckets.Add(new GradientBucket(tensorLayers[first], lastLayer, first, end, offsets[first], offsets[end]));
            end = first;
        }
        return buckets;
    }
}
