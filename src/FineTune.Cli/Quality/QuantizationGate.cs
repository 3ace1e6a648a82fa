using System.Runtime.CompilerServices;
using FineTune.Cli.Chat;
using FineTune.Cli.Samples;
using FineTune.Core.Datasets;
using FineTune.Data.Templates;
using FineTune.Engine.Backends;
using FineTune.Engine.Backends.Cpu;
using FineTune.Engine.Inference;
using FineTune.Engine.Lora;
using FineTune.Engine.Model;
using FineTune.Gguf.Import;
using FineTune.Gguf.Quantization;
using FineTune.Tokenizers;

namespace FineTune.Cli.Quality;

/// <summary>
/// Measures each GGUF against the model it was exported from. The trained model (base weights with
/// the adapter beside them, float32) and the GGUF's own weights (dequantized as ggml does) run the
/// same engine code on the same held-out tokens: mean cross-entropy over the target tokens, and
/// greedy replies to the held-out prompts ending at the chat template's stop tokens or after
/// <c>maxTokens</c>. The tokenizer is the base model's: the GGUF's vocabulary was written from it,
/// and the data was tokenized with it.
/// </summary>
public sealed class QuantizationGate(Tokenizer tokenizer, ChatTemplate template, int maxTokens)
{
    private const int BatchSize = 4;
    private readonly IComputeBackend _backend = new CpuBackend();

    /// <summary>
    /// Runs the check over <paramref name="ggufs"/>; <paramref name="data"/> names the split the examples and
    /// prompts come from. <paramref name="loadBase"/> is called once and its weights dropped before the first
    /// GGUF is read, so only one float32 model is held at a time. <paramref name="knownReplies"/> holds, per
    /// prompt, the trained model's reply already made by the samples step (null: generate it here).
    /// </summary>
    public QualityCheck Run(string data, ModelConfig config, Func<LlamaWeights> loadBase, LoraAdapter adapter, IReadOnlyList<TokenizedExample> examples,
        IReadOnlyList<HeldOutPrompt> prompts, IReadOnlyList<GateReply?> knownReplies, IReadOnlyList<string> ggufs, Action<string> log, CancellationToken cancellationToken)
    {
        var usable = Usable(examples, config);
        var (trainedLoss, trainedReplies) = MeasureTrained(loadBase, adapter, usable, prompts, knownReplies, cancellationToken);
        var reused = knownReplies.Count(r => r is not null);
        log($"gguf-check: trained model (base + adapter): loss {trainedLoss:F4}, perplexity {Math.Exp(trainedLoss):G5} on {usable.Count} {data} examples" +
            (prompts.Count == 0 ? "" : $"; replies to {prompts.Count} held-out prompts: {reused} from the samples step, {prompts.Count - reused} generated"));

        var results = new List<QuantizationResult>();
        var perGguf = new List<IReadOnlyList<GateReply>>();
        foreach (var path in ggufs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (result, replies) = MeasureGguf(path, usable, prompts, trainedLoss, trainedReplies, cancellationToken);
            results.Add(result);
            perGguf.Add(replies);
            log($"gguf-check: {result.Quantization}: loss {result.Loss:F4}, perplexity {result.Perplexity:G5} ({result.PerplexityGap:+0.00%;-0.00%} vs trained), " +
                $"{result.RepliesDiverged} of {result.Replies} replies differ, {result.RepliesStopped} ended at a stop token");
        }

        var comparisons = prompts.Select((p, i) => new ReplyComparison(p.Question, trainedReplies[i],
            results.Select((r, g) => new QuantizedReply(r.Quantization, perGguf[g][i].Text, perGguf[g][i].End, perGguf[g][i].Stopped,
                DivergesAt(trainedReplies[i].Text, perGguf[g][i].Text))).ToList())).ToList();
        return new QualityCheck(data, usable.Count, usable.Sum(e => (long)e.TargetCount), maxTokens,
            trainedLoss, Math.Exp(trainedLoss), trainedReplies.Count(r => r.Stopped), results, comparisons);
    }

    /// <summary>
    /// FT4060 when one float32 model and the largest evaluation batch of <paramref name="examples"/> do not fit
    /// the memory this process may use (see <see cref="GateMemory"/>); call it before loading anything large.
    /// </summary>
    public static void CheckMemory(ModelConfig config, IReadOnlyList<TokenizedExample> examples, int loraRank)
    {
        var weights = GateMemory.WeightBytes(config);
        GateMemory.Check(weights, weights + Batches(Usable(examples, config)).Select(b => GateMemory.ActivationBytes(config, b.Sum(e => (long)e.Length),
            b.Sum(e => (long)e.Length * e.Length), loraRank)).DefaultIfEmpty(0).Max());
    }

    private static List<TokenizedExample> Usable(IReadOnlyList<TokenizedExample> examples, ModelConfig config) =>
        examples.Select(e => Fit(e, config.MaxPositionEmbeddings)).Where(e => e.TargetCount > 0).ToList();

    // Each model lives only inside its own method, so its weights can be collected before the next is read.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private (double Loss, List<GateReply> Replies) MeasureTrained(Func<LlamaWeights> loadBase, LoraAdapter adapter, List<TokenizedExample> usable,
        IReadOnlyList<HeldOutPrompt> prompts, IReadOnlyList<GateReply?> knownReplies, CancellationToken cancellationToken)
    {
        var weights = loadBase();
        var loss = MeanLoss(Graph(weights, adapter), usable, cancellationToken);
        var missing = prompts.Where((_, i) => knownReplies[i] is null).ToList();
        var generated = new Queue<GateReply>(Replies(new LlamaDecoder(weights, adapter, _backend), missing, cancellationToken));
        return (loss, prompts.Select((_, i) => knownReplies[i] ?? generated.Dequeue()).ToList());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private (QuantizationResult Result, List<GateReply> Replies) MeasureGguf(string path, List<TokenizedExample> usable, IReadOnlyList<HeldOutPrompt> prompts,
        double trainedLoss, List<GateReply> trainedReplies, CancellationToken cancellationToken)
    {
        var gguf = GgufModel.Load(path);
        var loss = MeanLoss(Graph(gguf.Weights, adapter: null), usable, cancellationToken);
        var replies = Replies(new LlamaDecoder(gguf.Weights, adapter: null, _backend), prompts, cancellationToken);
        var gap = Math.Exp(loss - trainedLoss) - 1;
        var diverged = replies.Zip(trainedReplies).Count(p => p.First.Text != p.Second.Text);
        return (new QuantizationResult(QuantizationName(gguf, path), Path.GetFileName(path), loss, Math.Exp(loss), gap,
            replies.Count(r => r.Stopped), replies.Count, diverged, gguf.Describe()), replies);
    }

    // Forward passes only: one layer's buffers serve every layer, and the weights are used as they are (no packed copies).
    private LlamaGraph Graph(LlamaWeights weights, LoraAdapter? adapter) =>
        new(weights, adapter, _backend, gradientCheckpointing: true) { PrepareFrozenWeights = false };

    /// <summary>The file type the GGUF says it is (<c>general.file_type</c>), else the name's <c>.TYPE.gguf</c> part.</summary>
    private static string QuantizationName(GgufModel gguf, string path) =>
        gguf.File.Get("general.file_type")?.AsUInt64() is { } t && Enum.IsDefined((FileType)(int)t)
            ? ((FileType)(int)t).ToString()
            : Path.GetExtension(Path.GetFileNameWithoutExtension(path)).TrimStart('.');

    private static TokenizedExample Fit(TokenizedExample e, int context) =>
        e.Length <= context ? e : new TokenizedExample(e.Ids[..context], e.Targets[..context]);

    private static IEnumerable<List<TokenizedExample>> Batches(IReadOnlyList<TokenizedExample> examples) => examples.Chunk(BatchSize).Select(c => c.ToList());

    private static double MeanLoss(LlamaGraph graph, IReadOnlyList<TokenizedExample> examples, CancellationToken cancellationToken)
    {
        double sum = 0;
        long count = 0;
        foreach (var examplesOfBatch in Batches(examples))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = PackedBatch.FromExamples(examplesOfBatch);
            if (batch.LossRows.Length == 0) continue;
            sum += graph.ForwardBackward(batch, 0);
            count += batch.LossRows.Length;
        }
        return count == 0 ? double.NaN : sum / count;
    }

    private List<GateReply> Replies(LlamaDecoder decoder, IReadOnlyList<HeldOutPrompt> prompts, CancellationToken cancellationToken)
    {
        var generator = new ReplyGenerator(new EngineLanguageModel(decoder), tokenizer, template.StopTokens);
        var greedy = new TokenSampler(0, 0);
        return prompts.Select(p =>
        {
            // As training, samples and chat tokenize: dataset text never turns into special tokens.
            var ids = tokenizer.Encode(p.Text, p.ContentSpans, addSpecialTokens: false).Ids;
            var reply = generator.Generate(ids, greedy, maxTokens, _ => { }, cancellationToken);
            return new GateReply(reply.Text, SampleSet.Describe(reply), reply.Reason is StopReason.StopToken or StopReason.StopString);
        }).ToList();
    }

    private static int? DivergesAt(string a, string b) => a == b ? null : a.AsSpan().CommonPrefixLength(b);
}
