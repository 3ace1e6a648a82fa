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

    /// <summary>Runs the check over <paramref name="ggufs"/>; <paramref name="data"/> names the split the examples and prompts come from.</summary>
    public QualityCheck Run(string data, LlamaWeights baseWeights, LoraAdapter adapter, IReadOnlyList<TokenizedExample> examples,
        IReadOnlyList<HeldOutPrompt> prompts, IReadOnlyList<string> ggufs, Action<string> log, CancellationToken cancellationToken)
    {
        var usable = examples.Select(e => Fit(e, baseWeights.Config.MaxPositionEmbeddings)).Where(e => e.TargetCount > 0).ToList();
        var trainedLoss = MeanLoss(new LlamaGraph(baseWeights, adapter, _backend), usable, cancellationToken);
        var trainedReplies = Replies(new LlamaDecoder(baseWeights, adapter, _backend), prompts, cancellationToken);
        log($"gguf-check: trained model (base + adapter): loss {trainedLoss:F4}, perplexity {Math.Exp(trainedLoss):G5} on {usable.Count} {data} examples");

        var results = new List<QuantizationResult>();
        var perGguf = new List<IReadOnlyList<GateReply>>();
        foreach (var path in ggufs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var gguf = GgufModel.Load(path);
            var name = QuantizationName(gguf, path);
            var loss = MeanLoss(new LlamaGraph(gguf.Weights, adapter: null, _backend), usable, cancellationToken);
            var replies = Replies(new LlamaDecoder(gguf.Weights, adapter: null, _backend), prompts, cancellationToken);
            var gap = Math.Exp(loss - trainedLoss) - 1;
            var diverged = replies.Zip(trainedReplies).Count(p => p.First.Text != p.Second.Text);
            results.Add(new QuantizationResult(name, Path.GetFileName(path), loss, Math.Exp(loss), gap,
                replies.Count(r => r.Stopped), replies.Count, diverged, gguf.Describe()));
            perGguf.Add(replies);
            log($"gguf-check: {name}: loss {loss:F4}, perplexity {Math.Exp(loss):G5} ({gap:+0.00%;-0.00%} vs trained), " +
                $"{diverged} of {replies.Count} replies differ, {replies.Count(r => r.Stopped)} ended at a stop token");
        }

        var comparisons = prompts.Select((p, i) => new ReplyComparison(p.Question, trainedReplies[i],
            results.Select((r, g) => new QuantizedReply(r.Quantization, perGguf[g][i].Text, perGguf[g][i].End, perGguf[g][i].Stopped,
                DivergesAt(trainedReplies[i].Text, perGguf[g][i].Text))).ToList())).ToList();
        return new QualityCheck(data, usable.Count, usable.Sum(e => (long)e.TargetCount), maxTokens,
            trainedLoss, Math.Exp(trainedLoss), trainedReplies.Count(r => r.Stopped), results, comparisons);
    }

    /// <summary>The file type the GGUF says it is (<c>general.file_type</c>), else the name's <c>.TYPE.gguf</c> part.</summary>
    private static string QuantizationName(GgufModel gguf, string path) =>
        gguf.File.Get("general.file_type")?.AsUInt64() is { } t && Enum.IsDefined((FileType)(int)t)
            ? ((FileType)(int)t).ToString()
            : Path.GetExtension(Path.GetFileNameWithoutExtension(path)).TrimStart('.');

    private static TokenizedExample Fit(TokenizedExample e, int context) =>
        e.Length <= context ? e : new TokenizedExample(e.Ids[..context], e.Targets[..context]);

    private static double MeanLoss(LlamaGraph graph, IReadOnlyList<TokenizedExample> examples, CancellationToken cancellationToken)
    {
        double sum = 0;
        long count = 0;
        for (var i = 0; i < examples.Count; i += BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = PackedBatch.FromExamples(examples.Skip(i).Take(BatchSize).ToList());
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
