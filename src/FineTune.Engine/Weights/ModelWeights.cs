using System.Text.Json;
using FineTune.Core.Diagnostics;

namespace FineTune.Engine.Weights;

/// <summary>
/// The weights of a model folder: a single <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>. Tensors are read on demand from memory-mapped files.
/// </summary>
public sealed class ModelWeights : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _byTensor;

    private ModelWeights(string directory, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> byTensor)
    {
        Directory = directory;
        _files = files;
        _byTensor = byTensor;
    }

    /// <summary>The model folder.</summary>
    public string Directory { get; }

    /// <summary>All tensor names, sorted.</summary>
    public IReadOnlyList<string> Names => _byTensor.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>True when a tensor of that name exists.</summary>
    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <summary>Header entry of a tensor; FT3012 when absent.</summary>
    public TensorInfo Info(string name) => File(name).Info(name);

    /// <summary>Shape of a tensor.</summary>
    public long[] Shape(string name) => Info(name).Shape;

    /// <summary>Element type of a tensor as stored.</summary>
    public TensorDType DType(string name) => Info(name).DType;

    /// <summary>Reads a tensor converted to F32.</summary>
    public float[] ReadF32(string name) => File(name).ReadF32(name);

    /// <summary>Reads a tensor as bfloat16 bits into <paramref name="destination"/>, one tensor's worth of host memory at most.</summary>
    public void ReadBF16(string name, Span<ushort> destination)
    {
        var file = File(name);
        file.ReadBF16(file.Info(name), destination);
    }

    private SafetensorsFile File(string name) =>
        _byTensor.TryGetValue(name, out var f) ? f
            : throw new FineTuneException("FT3012", $"The model has no tensor '{name}'.", Directory);

    /// <summary>Opens <c>model.safetensors</c> or the shards of <c>model.safetensors.index.json</c> in <paramref name="directory"/>.</summary>
    public static ModelWeights Open(string directory)
    {
        var single = Path.Combine(directory, "model.safetensors");
        var index = Path.Combine(directory, "model.safetensors.index.json");
        var files = new List<SafetensorsFile>();
        var byTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            if (System.IO.File.Exists(single))
            {
                var f = SafetensorsFile.Open(single);
                files.Add(f);
                foreach (var t in f.Tensors) byTensor[t.Name] = f;
            }
            else if (System.IO.File.Exists(index))
            {
                foreach (var (tensor, shard) in ReadIndex(index))
                {
                    var path = Path.Combine(directory, shard);
                    var f = files.FirstOrDefault(x => x.Path == path);
                    if (f is null) { f = SafetensorsFile.Open(path); files.Add(f); }
                    if (!f.Contains(tensor))
                        throw new FineTuneException("FT3013", $"The index lists tensor '{tensor}' in '{shard}', which does not hold it.", index);
                    byTensor[tensor] = f;
                }
            }
            else
            {
                throw new FineTuneException("FT3013", "The model folder has neither model.safetensors nor model.safetensors.index.json.", directory);
            }
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return new ModelWeights(directory, files, byTensor);
    }

    private static IEnumerable<(string Tensor, string Shard)> ReadIndex(string index)
    {
        try
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(index));
            var map = doc.RootElement.GetProperty("weight_map");
            var result = new List<(string, string)>();
            foreach (var p in map.EnumerateObject())
            {
                var shard = p.Value.GetString() ?? "";
                if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                    throw new FineTuneException("FT3013", $"The index names shard '{shard}' outside the model folder.", index);
                result.Add((p.Name, shard));
            }
            return result;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FineTuneException("FT3013", "model.safetensors.index.json is not a valid index (no 'weight_map' object).", index);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
