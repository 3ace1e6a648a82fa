using System.Diagnostics;
using System.Text.Json;
using FineTune.Bench.Quantize;
using FineTune.Gguf.Format;
using FineTune.Gguf.Quantization;

// Times quantizing one F16 llama-architecture GGUF to Q8_0 and Q4_K_M, file to file: ours
// (read, convert, quantize with the llama.cpp type policy, write) against llama_model_quantize,
// in the same process with the same thread count. Prints one JSON line per measurement.
// Usage: quantize-bench [--threads N] [--hidden H] [--layers L] [--repeat R] [--types Q8_0,Q4_K_M]
// After the R runs of a type, a "quantize-median" line gives the medians and their ratio.
var threads = Arg("--threads", Environment.ProcessorCount);
var hidden = Arg("--hidden", 1024);
var layers = Arg("--layers", 8);
var repeat = Arg("--repeat", 2);
var typesArg = Array.IndexOf(args, "--types") is var ti and >= 0 && ti + 1 < args.Length ? args[ti + 1] : "Q8_0,Q4_K_M";
var types = typesArg.Split(',').Select(Enum.Parse<FileType>).ToArray();
var vocab = 16384;
var ffn = hidden * 3;

var dir = Directory.CreateTempSubdirectory("quantize-bench-").FullName;
try
{
    var input = Path.Combine(dir, "f16.gguf");
    var parameters = WriteF16Model(input, hidden, ffn, layers, vocab);
    LlamaQuantize.Load();
    foreach (var type in types)
    {
        var ours = new List<double>();
        var theirs = new List<double>();
        var allIdentical = true;
        for (var r = 0; r < repeat; r++)
        {
            // Alternating which runs first keeps the page cache and the other's leftovers from favouring one side.
            double o, t;
            if (r % 2 == 0)
            {
                o = Time(() => QuantizeOurs(input, Path.Combine(dir, "ours.gguf"), type, threads, layers, hidden));
                t = Time(() => QuantizeLlama(input, Path.Combine(dir, "llama.gguf"), type, threads));
            }
            else
            {
                t = Time(() => QuantizeLlama(input, Path.Combine(dir, "llama.gguf"), type, threads));
                o = Time(() => QuantizeOurs(input, Path.Combine(dir, "ours.gguf"), type, threads, layers, hidden));
            }
            var identical = SameTensors(Path.Combine(dir, "ours.gguf"), Path.Combine(dir, "llama.gguf"));
            allIdentical &= identical;
            ours.Add(o);
            theirs.Add(t);
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bench = "quantize", type = type.ToString(), threads, parameters, run = r,
                ours_s = Math.Round(o, 3), llama_cpp_s = Math.Round(t, 3),
                ratio_ours_over_llama = Math.Round(o / t, 3), tensors_identical = identical,
            }));
        }
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            bench = "quantize-median", type = type.ToString(), threads, parameters, repeats = repeat,
            ours_median_s = Math.Round(Median(ours), 3), llama_cpp_median_s = Math.Round(Median(theirs), 3),
            ratio_of_medians = Math.Round(Median(ours) / Median(theirs), 3), tensors_identical = allIdentical,
            peer = "llama_model_quantize (npm @node-llama-cpp/linux-x64 " + LlamaQuantize.PackageVersion() + "), default params, same nthread",
        }));
    }
}
finally
{
    Directory.Delete(dir, recursive: true);
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}

static bool SameTensors(string a, string b)
{
    var fa = GgufReader.Read(a);
    var fb = GgufReader.Read(b);
    return fa.Tensors.Count == fb.Tensors.Count && fa.Tensors.All(t =>
        fb.Tensor(t.Name) is { } u && u.Type == t.Type && fa.ReadTensorBytes(t).AsSpan().SequenceEqual(fb.ReadTensorBytes(u)));
}

static double Median(List<double> xs)
{
    var s = xs.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}

static double Time(Action a)
{
    var sw = Stopwatch.StartNew();
    a();
    return sw.Elapsed.TotalSeconds;
}

static unsafe void QuantizeLlama(string input, string output, FileType type, int threads)
{
    var p = LlamaQuantize.llama_model_quantize_default_params();
    p.NThread = threads;
    p.FType = (int)type;
    if (LlamaQuantize.llama_model_quantize(input, output, &p) != 0) throw new InvalidOperationException("llama_model_quantize failed");
}

static void QuantizeOurs(string input, string output, FileType type, int threads, int layers, int hidden)
{
    var f = GgufReader.Read(input);
    var heads = hidden / 64;
    var types = TensorTypePolicy.Choose(f.Tensors.Select(t => (t.Name, t.Shape)), type, new ModelFacts(layers, heads, heads / 2));
    // The input is mapped and each chunk of F16 rows converted just before it is quantized (as
    // llama.cpp maps its input; it converts a whole tensor to F32 first).
    using var data = f.MapData();
    var w = new GgufWriter();
    foreach (var (k, v) in f.Metadata) w.Set(k, v);
    w.Set("general.file_type", GgufValue.Of((uint)type));
    foreach (var t in f.Tensors)
    {
        var tensor = t;
        w.AddTensor(t.Name, t.Shape, types[t.Name], () => Quantizer.Quantize(types[tensor.Name], data.TensorBytes(tensor), tensor.Type, tensor.Shape[0], threads));
    }
    w.Write(output);
}

static long WriteF16Model(string path, int hidden, int ffn, int layers, int vocab)
{
    var rng = new Random(1);
    var heads = hidden / 64;
    var kv = hidden / 2;
    var w = new GgufWriter();
    w.Set("general.architecture", GgufValue.Of("llama"));
    w.Set("general.file_type", GgufValue.Of(1u));
    w.Set("llama.context_length", GgufValue.Of(2048u));
    w.Set("llama.embedding_length", GgufValue.Of((uint)hidden));
    w.Set("llama.block_count", GgufValue.Of((uint)layers));
    w.Set("llama.feed_forward_length", GgufValue.Of((uint)ffn));
    w.Set("llama.attention.head_count", GgufValue.Of((uint)heads));
    w.Set("llama.attention.head_count_kv", GgufValue.Of((uint)(heads / 2)));
    w.Set("llama.attention.layer_norm_rms_epsilon", GgufValue.Of(1e-5f));
    w.Set("llama.vocab_size", GgufValue.Of((uint)vocab));
    long parameters = 0;
    void Add(string name, params long[] shape)
    {
        var n = shape.Aggregate(1L, (a, b) => a * b);
        parameters += n;
        var data = new float[n];
        for (var i = 0; i < n; i++) data[i] = shape.Length == 1 ? 1f : (float)((rng.NextDouble() - 0.5) * 0.1);
        var type = shape.Length == 1 ? GgmlType.F32 : GgmlType.F16;
        w.AddTensor(name, shape, type, () => Quantizer.Quantize(type, data, shape[0]));
    }
    Add("token_embd.weight", hidden, vocab);
    Add("output_norm.weight", hidden);
    Add("output.weight", hidden, vocab);
    for (var l = 0; l < layers; l++)
    {
        Add($"blk.{l}.attn_norm.weight", hidden);
        Add($"blk.{l}.attn_q.weight", hidden, hidden);
        Add($"blk.{l}.attn_k.weight", hidden, kv);
        Add($"blk.{l}.attn_v.weight", hidden, kv);
        Add($"blk.{l}.attn_output.weight", hidden, hidden);
        Add($"blk.{l}.ffn_norm.weight", hidden);
        Add($"blk.{l}.ffn_gate.weight", hidden, ffn);
        Add($"blk.{l}.ffn_up.weight", hidden, ffn);
        Add($"blk.{l}.ffn_down.weight", ffn, hidden);
    }
    w.Write(path);
    return parameters;
}
