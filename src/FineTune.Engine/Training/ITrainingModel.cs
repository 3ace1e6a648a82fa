using FineTune.Engine.Distributed;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;

namespace FineTune.Engine.Training;

/// <summary>
/// What <see cref="Trainer"/> needs from a model it trains: forward/backward passes that accumulate
/// adapter gradients, the global gradient norm, clipping with an AdamW step, and moving the adapter
/// (values and AdamW moments) to and from the host for checkpoints and the saved PEFT adapter. One
/// trainer drives every device through this interface; the CPU graph and the CUDA model implement it.
/// </summary>
public interface ITrainingModel : IDisposable
{
    /// <summary>Dropout key of the LoRA inputs for the next micro-batch; null means no dropout (evaluation).</summary>
    ulong? DropoutKey { get; set; }

    /// <summary>Clears the accumulated adapter gradients (start of an optimizer step).</summary>
    void ZeroGradients();

    /// <summary>
    /// Forward pass and, when <paramref name="lossScale"/> is non-zero, the backward pass with
    /// d(loss)/d(logit) scaled by it, accumulating adapter gradients. Returns the sum of the
    /// cross-entropy over the batch's target rows.
    /// </summary>
    double ForwardBackward(PackedBatch batch, float lossScale);

    /// <summary>
    /// Forward pass; <paramref name="rowScales"/> gets the cross-entropy of every loss row and returns
    /// each row's d(loss)/d(cross-entropy) for the backward pass, or null for none. Preference losses
    /// (DPO, ORPO) train through this. <paramref name="adapterEnabled"/> false runs the frozen model
    /// alone (the reference model), forward only. Returns the rows' cross-entropy and mean logits.
    /// </summary>
    (double[] RowLoss, double[] RowLogitMeans) ForwardBackwardRows(PackedBatch batch, Func<double[], float[]?> rowScales, bool adapterEnabled = true);

    /// <summary>
    /// Called before this rank's last micro-batch of an optimizer step: from then on a layer's
    /// gradients are final once its backward pass is done, and a device may start summing them over
    /// <paramref name="group"/> while earlier layers still run (DDP's overlap). Optional.
    /// </summary>
    void BeginGradientSum(IRankGroup group) { }

    /// <summary>
    /// Makes the accumulated gradients their sum over <paramref name="group"/>'s ranks, in bucket
    /// order (<see cref="GradientBuckets"/>) and rank order within each element, so every rank ends
    /// with the same bits. Every rank calls it once per optimizer step, also one that had no examples.
    /// </summary>
    /// <remarks>The default serves one rank only: a model that cannot sum over ranks refuses several.</remarks>
    void SumGradients(IRankGroup group)
    {
        if (group.Size > 1) throw new InvalidOperationException($"{GetType().Name} cannot train on several ranks.");
    }

    /// <summary>The global L2 norm of the accumulated gradients, summed in a fixed order.</summary>
    double GradNorm();

    /// <summary>Clips the gradients to <paramref name="maxGradNorm"/> (given their norm) and applies AdamW step <paramref name="step"/> (1-based).</summary>
    void ClipAndStep(double gradNorm, double maxGradNorm, int step, double learningRate);

    /// <summary>Copies the adapter's current values and AdamW moments into <paramref name="adapter"/> (for saving).</summary>
    void CopyAdapterTo(LoraAdapter adapter);

    /// <summary>Takes values and AdamW moments from <paramref name="adapter"/> (initialisation, resumption).</summary>
    void LoadAdapter(LoraAdapter adapter);

    /// <summary>The most memory the run has held on its device, in bytes.</summary>
    long PeakMemoryBytes { get; }
}

/// <summary>A place a model can be trained: the CPU or a GPU.</summary>
public interface ITrainingDevice
{
    /// <summary>A short name for logs and train-summary.json, e.g. <c>cpu (2 threads)</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Creates the trainable model over the frozen weights of <paramref name="baseModel"/> with <paramref name="adapter"/>'s
    /// starting values. <paramref name="longestSequence"/> and the config's batch size bound the activations,
    /// which a device may check against its memory before the first step. <paramref name="log"/> receives
    /// plain lines worth showing the user (a memory plan, say).
    /// </summary>
    ITrainingModel CreateModel(BaseModel baseModel, LoraAdapter adapter, Core.Config.TrainingConfig config, int longestSequence, Action<string>? log);
}
