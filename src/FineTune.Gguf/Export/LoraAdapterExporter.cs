using FineTune.Core.Diagnostics;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;

namespace FineTune.Gguf.Export;

/// <summary>
/// Writes a LoRA adapter as a llama.cpp adapter GGUF (<c>general.type = adapter</c>), the file
/// Ollama's <c>ADAPTER</c> instruction takes: per targeted weight a <c>.lora_a</c> ([in, r] in ggml
/// order) and <c>.lora_b</c> ([r, out]) tensor under the base tensor's GGUF name, B's rows permuted
/// like the base q/k weights, and <c>adapter.lora.alpha</c> chosen so llama.cpp's alpha/r equals the
/// adapter's scale (rsLoRA included).
/// </summary>
public static class LoraAdapterExporter
{
    /// <summary>Writes the adapter in <paramref name="adapterDirectory"/> for the model in <paramref name="baseModel"/>.</summary>
    public static int Export(string baseModel, string adapterDirectory, string name, string version, string output)
    {
        var config = ModelConfig.Load(baseModel);
        var adapter = LoraAdapter.Load(adapterDirectory, config);
        var arch = HfTensorNames.Architecture(config);
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of(arch));
        w.Set("general.type", GgufValue.Of("adapter"));
        w.Set("general.name", GgufValue.Of(name));
        w.Set("general.version", GgufValue.Of(version));
        w.Set("adapter.type", GgufValue.Of("lora"));
        w.Set("adapter.lora.alpha", GgufValue.Of(adapter.Settings.Scale * adapter.Settings.Rank));
        var count = 0;
        for (var layer = 0; layer < config.NumLayers; layer++)
            foreach (var p in adapter.Settings.Targets)
            {
                var a = adapter.A(layer, p)!;
                var b = adapter.B(layer, p)!;
                var mapped = HfTensorNames.Map($"model.layers.{layer}.{p.Path()}.weight", config)
                    ?? throw new FineTuneException("FT4012", $"no GGUF name for the adapted projection {p.Path()}", adapterDirectory);
                var bData = mapped.PermuteHeads > 0 ? HfTensorNames.PermuteRows(b.Value, b.Rows, mapped.PermuteHeads) : b.Value;
                w.AddTensor(mapped.GgufName + ".lora_a", [a.Cols, a.Rows], GgmlType.F32, () => Quantizer.Quantize(GgmlType.F32, a.Value, a.Cols));
                w.AddTensor(mapped.GgufName + ".lora_b", [b.Cols, b.Rows], GgmlType.F32, () => Quantizer.Quantize(GgmlType.F32, bData, b.Cols));
                count += 2;
            }
        w.Write(output);
        return count;
    }
}
