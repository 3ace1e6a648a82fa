namespace FineTune.Build.IntegrationTests;

/// <summary>
/// <c>FineTuneGpuCount</c> as a user sets it on <c>dotnet build</c>: it reaches the training step's
/// <c>finetune train --gpus</c>, and asking for several GPUs while training on the CPU fails there
/// with FT7031 instead of being ignored. (Training on several GPUs needs a multi-GPU machine.)
/// </summary>
public sealed class GpuCountBuildTests : IDisposable
{
    private readonly ModelProjectSandbox _sandbox = ModelProjectSandbox.CreateFromExample(maxSteps: 2, withTinyBaseModel: true);

    [Fact]
    public void Several_gpus_with_the_cpu_device_fail_the_training_step_with_FT7031()
    {
        var result = _sandbox.Dotnet("build", "-p:FineTuneDevice=cpu", "-p:FineTuneGpuCount=2");
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("error FT7031: --gpus (FineTuneGpuCount) and --nnodes need --device cuda", result.Output);
        Assert.Empty(_sandbox.Ggufs());
    }

    public void Dispose() => _sandbox.Dispose();
}
