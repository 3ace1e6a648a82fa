using FineTune.Engine.Weights;

namespace FineTune.Engine.Model;

/// <summary>
/// A base model folder opened for training: its config.json and memory-mapped safetensors, every
/// tensor's presence and shape checked up front (headers only). The float32 copy the CPU graph needs
/// is built only when asked for, so a device that streams the tensors itself (the GPU) never holds
/// the whole model in host memory.
/// </summary>
public sealed class BaseModel : IDisposable
{
    private LlamaWeights? _float32;

    private BaseModel(string directory, ModelConfig config, ModelWeights files)
    {
        Directory = directory;
        Config = config;
        Files = files;
    }

    /// <summary>The model folder.</summary>
    public string Directory { get; }

    /// <summary>The architecture (config.json).</summary>
    public ModelConfig Config { get; }

    /// <summary>The safetensors, read tensor by tensor on demand.</summary>
    public ModelWeights Files { get; }

    /// <summary>All weights as float32 on the host, loaded on first use.</summary>
    public LlamaWeights Float32 => _float32 ??= LlamaWeights.Load(Config, Files);

    /// <summary>True once <see cref="Float32"/> has been built.</summary>
    public bool Float32Loaded => _float32 is not null;

    /// <summary>Opens <paramref name="directory"/>: FT3012/FT3017 when a tensor the config implies is absent or shaped otherwise.</summary>
    public static BaseModel Open(string directory)
    {
        var config = ModelConfig.Load(directory);
        var files = ModelWeights.Open(directory);
        try
        {
            LlamaTensorLayout.CheckAll(config, files);
        }
        catch
        {
            files.Dispose();
            throw;
        }
        return new BaseModel(directory, config, files);
    }

    /// <inheritdoc />
    public void Dispose() => Files.Dispose();
}
