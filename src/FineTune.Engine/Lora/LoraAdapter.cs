using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;
using FineTune.Engine.Weights;

namespace FineTune.Engine.Lora;

/// <summary>
/// LoRA adapters on the targeted projections of every layer: y = W x + scale · B (A x), with
/// A [r × in] and B [out × r]. Saved and loaded in PEFT's layout (<c>adapter_config.json</c> +
/// <c>adapter_model.safetensors</c>) so PEFT, llama.cpp's converter and this engine agree.
/// </summary>
public sealed class LoraAdapter
{
    private readonly LoraTensor?[,] _a;
    private readonly LoraTensor?[,] _b;

    /// <summary>Allocates zeroed adapters for <paramref name="config"/>.</summary>
    public LoraAdapter(ModelConfig config, LoraSettings settings)
    {
        Config = config;
        Settings = settings;
        _a = new LoraTensor?[config.NumLayers, Projections.All.Length];
        _b = new LoraTensor?[config.NumLayers, Projections.All.Length];
        var all = new List<LoraTensor>();
        var layers = new List<int>();
        for (var l = 0; l < config.NumLayers; l++)
            foreach (var p in settings.Targets)
            {
                var prefix = $"base_model.model.model.layers.{l}.{p.Path()}";
                var a = new LoraTensor(prefix + ".lora_A.weight", settings.Rank, p.InFeatures(config));
                var b = new LoraTensor(prefix + ".lora_B.weight", p.OutFeatures(config), settings.Rank);
                _a[l, (int)p] = a;
                _b[l, (int)p] = b;
                all.Add(a);
                all.Add(b);
                layers.Add(l);
                layers.Add(l);
            }
        Tensors = all;
        TensorLayers = layers;
    }

    /// <summary>The model architecture the adapter belongs to.</summary>
    public ModelConfig Config { get; }
    /// <summary>Rank, alpha, dropout, targets.</summary>
    public LoraSettings Settings { get; }
    /// <summary>All trainable tensors in a fixed order (layer, projection, A then B).</summary>
    public IReadOnlyList<LoraTensor> Tensors { get; }

    /// <summary>The layer of each of <see cref="Tensors"/> (non-decreasing: the tensors are layer-major).</summary>
    public IReadOnlyList<int> TensorLayers { get; }

    /// <summary>A of a layer's projection, or null when the projection is not targeted.</summary>
    public LoraTensor? A(int layer, Projection p) => _a[layer, (int)p];
    /// <summary>B of a layer's projection, or null when the projection is not targeted.</summary>
    public LoraTensor? B(int layer, Projection p) => _b[layer, (int)p];

    /// <summary>
    /// PEFT's default initialisation: A from kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in), and B zero,
    /// so the adapted model starts equal to the base model.
    /// </summary>
    public void Initialize(int seed)
    {
        var rng = new DeterministicRandom((ulong)seed ^ 0x4C6F5241UL);
        foreach (var t in Tensors)
        {
            if (!t.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal))
            {
                Array.Clear(t.Value);
                continue;
            }
            var bound = 1.0 / Math.Sqrt(t.Cols);
            for (var i = 0; i < t.Value.Length; i++) t.Value[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        }
    }

    /// <summary>Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> into <paramref name="directory"/>.</summary>
    public void Save(string directory, string baseModelNameOrPath)
    {
        Directory.CreateDirectory(directory);
        SafetensorsWriter.Write(Path.Combine(directory, "adapter_model.safetensors"),
            Tensors.Select(t => new TensorToWrite(t.Name, [t.Rows, t.Cols], t.Value)),
            new Dictionary<string, string> { ["format"] = "pt" });
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelNameOrPath,
            ["r"] = Settings.Rank,
            ["lora_alpha"] = Settings.Alpha,
            ["lora_dropout"] = Settings.Dropout,
            ["use_rslora"] = Settings.UseRsLora,
            ["target_modules"] = new JsonArray(Settings.Targets.Select(p => (JsonNode)p.ModuleName()).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["modules_to_save"] = null,
        };
        Core.IO.AtomicFile.WriteAllText(Path.Combine(directory, "adapter_config.json"),
            config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Reads a PEFT LoRA adapter folder for a model of <paramref name="config"/>.</summary>
    public static LoraAdapter Load(string directory, ModelConfig config)
    {
        var configPath = Path.Combine(directory, "adapter_config.json");
        if (!File.Exists(configPath))
            throw new FineTuneException("FT3018", "The adapter folder has no adapter_config.json.", directory);
        LoraSettings settings;
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
            if ((string?)o["peft_type"] is { } type && type != "LORA")
                throw new FineTuneException("FT3018", $"peft_type '{type}' is not LORA.", configPath);
            var targets = o["target_modules"] switch
            {
                JsonArray arr => arr.Select(n => (string)n!).ToList(),
                JsonValue v when (string?)v == "all-linear" => Projections.All.Select(p => p.ModuleName()).ToList(),
                _ => throw new FineTuneException("FT3018", "target_modules must be a list of module names.", configPath),
            };
            var unknown = targets.FirstOrDefault(t => Projections.All.All(p => p.ModuleName() != t));
            if (unknown is not null)
                throw new FineTuneException("FT3018", $"target module '{unknown}' is not one of the seven Llama projections.", configPath);
            settings = new LoraSettings((int)o["r"]!, (double)o["lora_alpha"]!, (double?)o["lora_dropout"] ?? 0,
                (bool?)o["use_rslora"] ?? false, targets.Select(Projections.Parse).Distinct().OrderBy(p => p).ToList());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new FineTuneException("FT3018", "adapter_config.json is not a valid PEFT LoRA config: " + e.Message, configPath);
        }
        var adapter = new LoraAdapter(config, settings);
        using var file = SafetensorsFile.Open(Path.Combine(directory, "adapter_model.safetensors"));
        foreach (var t in adapter.Tensors)
        {
            // PEFT versions differ in whether the adapter name ("default") appears in saved keys.
            var name = file.Contains(t.Name) ? t.Name : t.Name.Replace(".weight", ".default.weight");
            var info = file.Info(name);
            if (info.Shape.Length != 2 || info.Shape[0] != t.Rows || info.Shape[1] != t.Cols)
                throw new FineTuneException("FT3018",
                    $"Adapter tensor '{t.Name}' has shape [{string.Join(", ", info.Shape)}], expected [{t.Rows}, {t.Cols}] for this base model.", file.Path);
            file.ReadF32(info, t.Value);
        }
        return adapter;
    }

    /// <summary>Adds scale · B·A into the base weights (merging), leaving the adapter unchanged.</summary>
    public void MergeInto(LlamaWeights weights)
    {
        var scale = Settings.Scale;
        for (var l = 0; l < Config.NumLayers; l++)
            foreach (var p in Settings.Targets)
            {
                var a = A(l, p)!;
                var b = B(l, p)!;
                var w = weights.Layers[l].Linear[(int)p];
                var r = Settings.Rank;
                Parallel.For(0, b.Rows, o =>
                {
                    for (var i = 0; i < a.Cols; i++)
                    {
                        var s = 0f;
                        for (var k = 0; k < r; k++) s += b.Value[o * r + k] * a.Value[k * a.Cols + i];
                        w[o * a.Cols + i] += scale * s;
                    }
                });
            }
    }
}
