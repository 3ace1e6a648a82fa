using FineTune.Engine.Model;

namespace FineTune.Engine.Backends.Cuda.Training;

/// <summary>Preference training (DPO, ORPO): per-row losses out, per-row gradient scales in, and the reference model.</summary>
public sealed partial class CudaTrainingModel
{
    /// <summary>False while the frozen model runs alone (the reference model): the LoRA products are skipped.</summary>
    private bool _adapterEnabled = true;

    /// <inheritdoc />
    /// <remarks>
    /// One forward pass over the padding-free batch, then the fused head over the loss rows leaves each
    /// row's loss and logit sum on the device and keeps its softmax sums; the host reads them (the one
    /// wait of the step), <paramref name="rowScales"/> turns them into per-row scales, and a second small
    /// kernel forms the head's gradient from the kept sums with those scales: the logits are not
    /// recomputed. The backward pass is the SFT one.
    /// </remarks>
    public (double[] RowLoss, double[] RowLogitMeans) ForwardBackwardRows(PackedBatch batch, Func<double[], float[]?> rowScales, bool adapterEnabled = true)
    {
        _adapterEnabled = adapterEnabled;
        try
        {
            var (n, lossRows, shape) = Forward(batch, backward: adapterEnabled);
            LossHead(n, lossRows, 0f, _ws.LogitSum);
            var loss = new float[lossRows];
            var sums = new float[lossRows];
            if (lossRows > 0)
            {
                _ctx.Download<float>(loss, _ws.Loss);
                _ctx.Download<float>(sums, _ws.LogitSum);
            }
            var rowLoss = loss.Select(x => (double)x).ToArray();
            var means = sums.Select(x => x / (double)_c.VocabSize).ToArray();
            if (rowScales(rowLoss) is not { } scales) return (rowLoss, means);
            if (!adapterEnabled) throw new InvalidOperationException("A backward pass needs the adapter switched on.");
            if (scales.Length != lossRows) throw new ArgumentException("One scale per loss row.", nameof(rowScales));
            if (lossRows == 0) return (rowLoss, means);
            _ctx.Upload<float>(_ws.RowScale, scales);
            _head.Gradient(_ws.Scratch, _w.LmHead.Pointer, _ws.Targets, _ws.RowScale, lossRows);
            _ctx.Training.ScatterRows(_ws.DNorm, _ws.Scratch, _ws.LossRows, lossRows, _c.HiddenSize);
            Backward(n, shape);
            return (rowLoss, means);
        }
        finally
        {
            _adapterEnabled = true;
        }
    }
}
