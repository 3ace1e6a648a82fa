using FineTune.Engine.Backends.Cuda.Training;
using FineTune.Engine.Backends.Cuda.Verification;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Tests.Cuda;

/// <summary>
/// The tiny Gemma 3 the GPU training checks run (no GPU needed here): written to disk it reads back
/// as the same gemma3_text architecture, every weight loads, and the CUDA backend takes its shapes,
/// so a GPU check failure is about the kernels, not the model it was given.
/// </summary>
public sealed class TrainingChecksModelTests
{
    [Fact]
    public void Tiny_gemma3_reads_back_as_written_and_the_cuda_backend_takes_it()
    {
        var dir = Directory.CreateTempSubdirectory("ft-gemma-check-");
        try
        {
            var written = TrainingChecks.TinyGemmaConfig();
            TrainingChecks.WriteModel(dir.FullName, written, seed: 11);
            var read = ModelConfig.Load(dir.FullName);
            Assert.Equal("gemma3_text", read.ModelType);
            Assert.Equal((written.HeadDim, written.NumHeads, written.NumKvHeads, written.SlidingWindow, written.LinearRopeFactor), (read.HeadDim, read.NumHeads, read.NumKvHeads, read.SlidingWindow, read.LinearRopeFactor));
            Assert.True(read.IsSlidingLayer(0));
            Assert.False(read.IsSlidingLayer(1));
            Assert.True(read is { SandwichNorms: true, NormWeightOffset: true, QkNorm: true, Activation: GateActivation.GeluTanh, TieWordEmbeddings: true });
            Assert.Equal(8f, read.EmbeddingScale);
            Assert.Equal(1f / 16, read.AttentionScale);
            using var files = ModelWeights.Open(dir.FullName);
            var weights = LlamaWeights.Load(read, files);
            Assert.NotNull(weights.Layers[1].MlpOutNorm);
            Assert.True(CudaTrainingModel.Supports(read, out var reason), reason);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Head_dims_the_attention_kernels_cannot_take_are_refused_up_front()
    {
        var wide = TrainingChecks.TinyGemmaConfig() with { HeadDim = 512 };
        Assert.False(CudaTrainingModel.Supports(wide, out var reason));
        Assert.Contains("head_dim (512)", reason);
    }
}
